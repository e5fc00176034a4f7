# Quick start: `make demo` and `make test` on a fresh clone. Everything installs from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: venv build-deps tools demo test lint typecheck unit unit-mysql mysql test-mysql bench eval clean

venv: $(STAMP)

$(STAMP): pyproject.toml | build-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the MariaDB engine's driver (`mariadb` 1.1, in the dev extra) has no Linux wheel: pip builds it
# against MariaDB Connector/C, found by `mariadb_config` (Debian's libmariadb-dev), with
# pkg-config and a C compiler
build-deps:
	@command -v mariadb_config >/dev/null && command -v pkg-config >/dev/null \
		&& command -v cc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq libmariadb-dev pkg-config gcc >/dev/null; } || true
	@command -v mariadb_config >/dev/null || { echo "error: mariadb_config not found: install \
	libmariadb-dev, pkg-config and gcc (apt-get, as root), then run make again" >&2; exit 1; }

demo: venv
	$(BIN)/retention demo

lint: venv
	$(BIN)/ruff check retention tests bench eval
	$(BIN)/ruff format --check retention tests bench eval

typecheck: venv
	$(BIN)/mypy

# the standard `age` command line decrypts archives in the tests (Debian package)
# ssh-keygen signs approvals in the tests, as approvers do (`retention approve --key`; openssh-client)
# headless Chromium renders the compliance report in the tests (Debian package; without it,
# after a failed install, the browser test is skipped and says why)
tools:
	command -v age >/dev/null || (apt-get update -qq && apt-get install -y -qq age)
	command -v ssh-keygen >/dev/null || (apt-get update -qq && apt-get install -y -qq openssh-client)
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium >/dev/null; } || echo "warning: chromium could not be \
	installed (apt-get as root); the report's browser test will be skipped"

unit: venv tools
	@# the package's bytecode, as an installed copy has it (pip compiles at install): with
	@# PYTHONDONTWRITEBYTECODE=1, as on these machines, each `retention` a test starts would
	@# compile the modules it imports again (CLI-heavy tests: 113 s -> 95 s)
	$(BIN)/python -m compileall -q retention > /dev/null
	@# three workers on two cores, idle ones stealing work: many tests wait on a server or a
	@# subprocess (the whole suite, same tree, 2026-12-07: 6 min 40 s with -n 2, 6 min 11 s so)
	$(BIN)/pytest -n 3 --dist worksteal -q --durations=15

# MySQL (Debian's unstable package, set up in /var/tmp/retention-mysql by debootstrap, started on
# 127.0.0.1:3307): the MariaDB engine's tests against it; those that test what only MariaDB has
# are skipped there, each saying why (tests/fix_mariadb.py, mariadb_only)
mysql:
	tests/mysql-server.sh

test-mysql: venv tools mysql
	RETENTION_TEST_MARIADB_URL=mysql://root@127.0.0.1:3307/ \
		$(BIN)/pytest -n 3 --dist worksteal -q -k "mariadb or mysql" -p no:cacheprovider

# what `make test` runs on MySQL too (about 1.5 min): the demo end to end, the clock's boundary
# day and its SQL against Python, runs, archives, MyISAM intents under kill -9, late rows, the
# trail; where MySQL cannot be set up (no Debian archive reachable), said in capitals and not
# failed: MariaDB and PostgreSQL stay the engines every CI run tests
MYSQL_TESTS = tests/test_boundary_day.py tests/test_clock_engines.py tests/test_demo_mariadb.py \
	tests/test_run_mariadb.py tests/test_archive_mariadb.py tests/test_intents_mariadb.py \
	tests/test_late_rows.py tests/test_mariadb_audit.py tests/test_mysql_server.py \
	tests/test_mysql_paths_mariadb.py tests/test_own_tables_altered.py

unit-mysql: venv tools
	@# `make test` started the server's set-up before the suite (MYSQL_STARTED=1): wait for
	@# it to end; alone, set it up now (files an interrupted `make test` left are overwritten)
	@if [ -z "$(MYSQL_STARTED)" ]; then tests/mysql-server.sh >.mysql-server.url \
		2>.mysql-server.err; echo $$? >.mysql-server.rc; fi
	@for _ in $$(seq 900); do [ -s .mysql-server.rc ] && break; sleep 1; done; \
		[ -s .mysql-server.rc ] || { echo 1 >.mysql-server.rc; \
		echo "the MySQL server's set-up did not end within 15 minutes" >.mysql-server.err; }
	@rc=$$(cat .mysql-server.rc); url=$$(cat .mysql-server.url); rm -f .mysql-server.rc; \
	if [ "$$rc" = 0 ]; then \
		echo "MySQL at $$url: $(words $(MYSQL_TESTS)) test files against it"; \
		RETENTION_TEST_MARIADB_URL=$$url $(BIN)/pytest -n 3 --dist worksteal -q \
			-p no:cacheprovider -k "mariadb or mysql" $(MYSQL_TESTS); \
	else echo "!!!!! MYSQL TESTS NOT RUN: $$(cat .mysql-server.err)" >&2; fi

# the MySQL server's set-up (on a fresh machine about 40 s, mostly downloading) runs in the
# background while lint, mypy and the main suite run; `unit-mysql` waits for it
test: venv tools
	@: >.mysql-server.rc
	@{ tests/mysql-server.sh >.mysql-server.url 2>.mysql-server.err; echo $$? >.mysql-server.rc; } \
		</dev/null >/dev/null 2>&1 &
	$(MAKE) --no-print-directory lint typecheck unit
	$(MAKE) --no-print-directory unit-mysql MYSQL_STARTED=1

bench: venv
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.archive
	$(BIN)/python -m bench.scan

# discovery and scrub against Presidio's own tools on a labelled database; writes eval/RESULTS.md
eval: venv
	$(BIN)/python -m eval.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .retention-demo .mysql-server.err .mysql-server.url .mysql-server.rc
