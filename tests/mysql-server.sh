#!/usr/bin/env bash
# A MySQL server for the tests on 127.0.0.1:3307 (root, no password): the MariaDB engine's tests
# run against it too (`make test-mysql`). Debian 12 packages no MySQL; Debian's unstable suite
# does (MySQL 9.7 when this was written), for a newer C library than Debian 12's: it is set up
# in a folder of its own (debootstrap) and started there (chroot), left running for the next
# test session. As root. Prints where it is; exits non-zero, saying why, when it cannot.
#
# The server runs without GTID consistency enforced (Debian's package turns it on): that way the
# tests reach the intent journal of MyISAM tables; with it on, `check` refuses such phases
# (tests/test_mysql_server.py asserts it on the catalogue's reading).
set -euo pipefail

ROOT=${RETENTION_MYSQL_ROOT:-/var/tmp/retention-mysql}
PORT=${RETENTION_MYSQL_PORT:-3307}
URL="mysql://root@127.0.0.1:${PORT}/"

answers() { mariadb -h127.0.0.1 -P"$PORT" -uroot --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1; }

if answers; then
    echo "$URL"
    exit 0
fi
command -v mariadb >/dev/null || { echo "no mariadb client to reach the server" >&2; exit 1; }
if [ ! -x "$ROOT/usr/sbin/mysqld" ]; then
    command -v debootstrap >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    rm -rf "$ROOT.partial"
    debootstrap --variant=minbase --include=mysql-server-core,mysql-client-core \
        sid "$ROOT.partial" http://deb.debian.org/debian >"$ROOT.log" 2>&1 \
        || { echo "debootstrap of Debian unstable with MySQL failed (see $ROOT.log)" >&2; exit 1; }
    mv "$ROOT.partial" "$ROOT"
fi
mkdir -p "$ROOT/var/lib/mysql-files" "$ROOT/run/mysqld"
chroot "$ROOT" sh -c 'getent passwd mysql >/dev/null || useradd -r mysql;
    chown -R mysql /var/lib/mysql-files /run/mysqld'
if [ ! -d "$ROOT/var/lib/mysqldata/mysql" ]; then
    rm -rf "$ROOT/var/lib/mysqldata"
    chroot "$ROOT" mysqld --initialize-insecure --user=mysql --datadir=/var/lib/mysqldata \
        >"$ROOT.init.log" 2>&1 || { echo "mysqld --initialize failed (see $ROOT.init.log)" >&2; exit 1; }
fi
chroot "$ROOT" sh -c "nohup mysqld --user=mysql --datadir=/var/lib/mysqldata --port=$PORT \
    --bind-address=127.0.0.1 --socket=/run/mysqld/mysqld.sock --mysqlx=OFF \
    --gtid-mode=OFF --enforce-gtid-consistency=OFF >/var/log/mysqld.out 2>&1 &"
for _ in $(seq 60); do
    if answers; then
        echo "$URL"
        exit 0
    fi
    sleep 1
done
echo "MySQL did not answer on 127.0.0.1:$PORT within 60 s (see $ROOT/var/log/mysqld.out)" >&2
exit 1
