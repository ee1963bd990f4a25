# recsvc image: Node 24 LTS on Debian slim, three stages.
#   build     npm ci with dev dependencies, then tsc -> dist/
#   prod-deps npm ci --omit=dev: the runtime node_modules only
#   runtime   node + tini + dist + sql + production node_modules, run as the unprivileged `node` user
#
#   docker build -t recsvc .                # or: docker compose build
#   docker run --rm -p 3000:3000 -e MYSQL_URL=... -e REDIS_URL=... recsvc
#
# The same image runs the one-shot seeder: node dist/scripts/seed.js --users N (see docker-compose.yml).
# .dockerignore is an allow-list: only package*.json, tsconfig*.json, src/, workers/, scripts/ and sql/
# reach the build context, so .env files, .git, node_modules and dist/ never end up in a layer.

# The Node base image. Official by default; tools/docker/stand-ins.sh builds a local stand-in from
# Debian's packages (and Node from the npm registry) for machines that reach no image registry:
#   docker build --build-arg NODE_IMAGE=recsvc-standin/node:24-bookworm-slim .
# Nothing else is pulled: no `# syntax=` frontend image, no cache mounts (the legacy builder of
# docker-compose 1.29 builds this file as well as BuildKit does).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
# --ignore-scripts: the build needs only tsc; no dependency's install script is required for it
# (the dev-only `node` package would otherwise download a second Node binary here).
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
COPY scripts ./scripts
# tsc directly rather than `npm run build`: node_modules/.bin/node (from the dev-only `node` package)
# must not shadow the image's node.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
# No production dependency has an install script (checked by test/deploy/docker-files.test.ts).
RUN npm ci --omit=dev --ignore-scripts

# ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards SIGTERM to node (graceful drain, see SHUTDOWN_DRAIN_DELAY_MS) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app
# Files stay owned by root and read-only to the service user; the service writes nothing to disk.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY sql ./sql
USER node
EXPOSE 3000
# Liveness only (the process answers); readiness (/health/ready: booted, not shutting down) is checked by compose.
# Slim images have no curl: node's fetch does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "dist/src/server.js"]
