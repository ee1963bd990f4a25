# Stand-in for mysql:8.4: Debian's MariaDB, behind an entrypoint that honours what compose relies on
# from the official image: MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD, MYSQL_ROOT_PASSWORD, the
# first-start scripts of /docker-entrypoint-initdb.d, a temporary init server on the socket only,
# and server options as the command (`--max-connections=500 ...`). mysqladmin is MariaDB's.
ARG BASE=recsvc-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-server mariadb-client \
 && rm -rf /var/lib/apt/lists/* /var/lib/mysql/* \
 && mkdir -p /docker-entrypoint-initdb.d /run/mysqld && chown mysql:mysql /run/mysqld /var/lib/mysql \
 && printf '[mysqld]\nbind-address = 0.0.0.0\n' > /etc/mysql/mariadb.conf.d/99-docker.cnf
COPY mysql-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/mysql
ENTRYPOINT ["/bin/bash", "/usr/local/bin/docker-entrypoint.sh"]
EXPOSE 3306
CMD ["mariadbd"]
