# Stand-in for nginx:1.28 (Debian-based): Debian's nginx-light, curl for the health check, and
# getent/sort (libc-bin, coreutils) for nginx/dns-reload.sh, which compose runs as the command.
ARG BASE=recsvc-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
