#!/usr/bin/env bash
# A MySQL server for the tests on 127.0.0.1:3307 (root, no password): the MariaDB engine's tests
# run against it too (`make test-mysql`). Debian 12 packages no MySQL; Debian's unstable suite
# does (MySQL 9.7 when this was written), for a newer C library than Debian 12's: it is set up
# in a folder of its own (debootstrap) and started there (chroot), left running for the next
# test session. As root. Prints where it is; exits non-zero, saying why, when it cannot.
#
# The server runs with GTID on and GTID consistency enforced, as replicated servers run: MySQL
# then refuses a change to a MyISAM table inside a transaction that changes InnoDB (error 1785),
# which the tool's batches on tables without transactions must never do. A server found running
# otherwise (started by an earlier version of this script) is restarted so.
set -euo pipefail

ROOT=${RETENTION_MYSQL_ROOT:-/var/tmp/retention-mysql}
PORT=${RETENTION_MYSQL_PORT:-3307}
URL="mysql://root@127.0.0.1:${PORT}/"

client() { mariadb -h127.0.0.1 -P"$PORT" -uroot --connect-timeout=2 "$@"; }
answers() { client -e 'SELECT 1' >/dev/null 2>&1; }
enforcing() { [ "$(client -N -e 'SELECT @@GLOBAL.enforce_gtid_consistency' 2>/dev/null)" = ON ]; }

if answers; then
    if enforcing; then
        echo "$URL"
        exit 0
    fi
    client -e 'SHUTDOWN' >/dev/null 2>&1 || true
    for _ in $(seq 60); do answers || break; sleep 1; done
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
    --gtid-mode=ON --enforce-gtid-consistency=ON >/var/log/mysqld.out 2>&1 &"
for _ in $(seq 60); do
    if answers && enforcing; then
        echo "$URL"
        exit 0
    fi
    sleep 1
done
echo "MySQL did not answer on 127.0.0.1:$PORT within 60 s (see $ROOT/var/log/mysqld.out)" >&2
exit 1
