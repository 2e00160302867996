#!/usr/bin/env bash
# pgx-suite.sh runs pgx's own test suite (the pgx version in go.mod) twice:
# directly against PostgreSQL and through Gatehouse, with a policy that
# allows every statement to one agent identity (scripts/pgx-suite/policy:
# no mask, no approval, every statement classified, decided and recorded).
# It prints passed/failed/skipped per run and every test whose outcome
# differs, with the first lines of its output, and exits non-zero when a
# test passes directly but not through the gateway and is not listed in the
# allow-list of deliberate differences (scripts/pgx-suite/allow.txt), or
# when the gateway exits during the run. See docs/compatibility.md.
#
# Usage (from anywhere in the repository):
#   scripts/pgx-suite.sh                               # the whole suite
#   PKGS=./pgconn scripts/pgx-suite.sh -run 'TestConnExec'   # extra args go to go test
#
# Environment:
#   PGHOST, PGPORT, PGUSER  the backend (default 127.0.0.1, 5432, postgres;
#                           trust authentication, a superuser: the suite
#                           creates extensions and terminates backends)
#   DB_DIRECT, DB_GATEWAY   databases created afresh for each run (default
#                           gh_pgx_direct, gh_pgx_gateway; dropped at the end)
#   PKGS                    pgx packages to test (default ./...)
#   TEST_TIMEOUT            go test -timeout per package (default 5m)
#   ALLOW                   allow-list (default scripts/pgx-suite/allow.txt)
#   OUT                     where results are kept (default bin/pgx-suite):
#                           direct.json, gateway.json (go test -json),
#                           gateway.log, summary.txt
#   KEEP=1                  keep the databases and the work directory
#
# Needs: Go, psql (apt-get install postgresql-client), PostgreSQL with the
# hstore and ltree extensions (apt-get install postgresql-contrib), and the
# Go module proxy (or a module cache holding pgx's test dependencies).
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB_DIRECT=${DB_DIRECT:-gh_pgx_direct}
DB_GATEWAY=${DB_GATEWAY:-gh_pgx_gateway}
PKGS=${PKGS:-./...}
TEST_TIMEOUT=${TEST_TIMEOUT:-5m}
KEEP=${KEEP:-}

root=$(cd "$(dirname "$0")/.." && pwd)
ALLOW=${ALLOW:-$root/scripts/pgx-suite/allow.txt}
OUT=${OUT:-$root/bin/pgx-suite}
work=$(mktemp -d /tmp/gatehouse-pgx-suite.XXXXXX)
gw_pid=""

PSQL=$(command -v psql || true)
[ -x "$PSQL" ] || { echo "psql not found: apt-get install postgresql-client" >&2; exit 2; }
command -v go >/dev/null || { echo "go not found on PATH" >&2; exit 2; }

psql_admin() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$@"; }

cleanup() {
	if [ -n "$gw_pid" ]; then
		kill "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	if [ -z "$KEEP" ]; then
		psql_admin -c "DROP DATABASE IF EXISTS $DB_DIRECT WITH (FORCE)" -c "DROP DATABASE IF EXISTS $DB_GATEWAY WITH (FORCE)" postgres 2>/dev/null || true
		chmod -R u+w "$work" 2>/dev/null || true
		rm -rf "$work"
	else
		echo "kept: $work, databases $DB_DIRECT and $DB_GATEWAY"
	fi
}
trap cleanup EXIT

now() { date +%s; }
t_start=$(now)
mkdir -p "$OUT"

# The pgx version gatehouse builds with, and its source (tests included).
cd "$root"
pgx_version=$(go list -m -f '{{.Version}}' github.com/jackc/pgx/v5)
go mod download github.com/jackc/pgx/v5
pgx_src=$(go list -m -f '{{.Dir}}' github.com/jackc/pgx/v5)
[ -d "$pgx_src" ] || { echo "pgx source not found in the module cache" >&2; exit 2; }
commit=$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- runtime bench scripts/pgx-suite || echo '+dirty')

echo "== pgx $pgx_version suite, direct and through Gatehouse $commit"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $(psql_admin -Atc 'SHOW server_version' postgres)"
echo "go: $(go version)"

# The module cache is read-only: test a writable copy.
cp -r "$pgx_src" "$work/pgx"
chmod -R u+w "$work/pgx"

# setup_db NAME: a fresh database as pgx's testsetup/postgresql_setup.sql
# prepares it (extensions and the uint64 domain). The login roles that
# file creates serve the optional PGX_TEST_*_CONN_STRING tests (TLS, MD5,
# SCRAM), which this script does not run.
setup_db() {
	psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" postgres
	psql_admin -c 'CREATE EXTENSION hstore' -c 'CREATE EXTENSION ltree' \
		-c 'CREATE DOMAIN uint64 AS numeric(20,0)' "$1"
}
setup_db "$DB_DIRECT"
setup_db "$DB_GATEWAY"
# TestTextCodecACLItemRoleWithSpecialCharacters needs this role to exist
# (an aclitem can only name existing roles); it skips otherwise. Roles are
# cluster-wide: created once, without login or privileges.
psql_admin postgres <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN', $r$ tricky, ' } " \ test user $r$)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = $r$ tricky, ' } " \ test user $r$) \gexec
SQL

echo "== building the gateway and pgx's tests"
t0=$(now)
go build -o "$work/pgserve" ./bench/pgserve || { echo "building bench/pgserve failed" >&2; exit 2; }
go build -o "$work/compare" ./scripts/pgx-suite/compare || { echo "building the comparison failed" >&2; exit 2; }
# go test env: nothing from the caller's PG* or PGX_* variables leaks into
# pgx's connection defaults.
clean_env=(env GOWORK=off GOFLAGS=-mod=mod)
while IFS= read -r v; do clean_env+=(-u "$v"); done < <(compgen -e | grep -E '^PG' || true)
(cd "$work/pgx" && "${clean_env[@]}" go test -count=1 -run '^$' "$@" $PKGS >/dev/null) ||
	{ echo "building pgx's tests failed" >&2; exit 2; }
t_build=$(($(now) - t0))

echo "== gateway"
"$work/pgserve" -policy "$root/scripts/pgx-suite/policy" -state "$work/state" \
	-resource pgx-test -backend "$PGHOST:$PGPORT" -database "$DB_GATEWAY" -user "$PGUSER" \
	-identity pgx-suite -token-out "$work/token" -addr-out "$work/addr" 2>"$work/gateway.log" &
gw_pid=$!
for _ in $(seq 300); do [ -s "$work/addr" ] && break; sleep 0.1; done
[ -s "$work/addr" ] || { echo "the gateway did not start:"; cat "$work/gateway.log"; exit 2; }
gw_addr=$(cat "$work/addr")
echo "listening on $gw_addr, resource pgx-test -> $PGHOST:$PGPORT/$DB_GATEWAY"

# run_suite NAME DSN: go test -json of the pgx packages into $OUT/NAME.json.
# The connection is TCP both ways, so PGX_TEST_TCP_CONN_STRING is the same
# string (it enables the tests that terminate a backend and check that the
# client notices). The other optional strings (Unix socket, TLS, MD5, SCRAM,
# plain password) need server configuration this script does not make.
run_suite() {
	local name=$1 dsn=$2 t0 rc=0
	shift 2
	t0=$(now)
	(cd "$work/pgx" && "${clean_env[@]}" PGX_TEST_DATABASE="$dsn" PGX_TEST_TCP_CONN_STRING="$dsn" \
		go test -json -count=1 -timeout "$TEST_TIMEOUT" "$@" $PKGS) >"$OUT/$name.json" 2>"$OUT/$name.stderr" || rc=$?
	printf -v "t_$name" '%s' "$(($(now) - t0))"
	echo "$name: go test exit $rc in $(($(now) - t0)) s"
}
echo "== direct: $PGHOST:$PGPORT/$DB_DIRECT"
run_suite direct "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$DB_DIRECT sslmode=disable" "$@"
echo "== through the gateway: $gw_addr/pgx-test"
run_suite gateway "host=${gw_addr%:*} port=${gw_addr##*:} user=pgx-suite password=$(cat "$work/token") dbname=pgx-test sslmode=disable" "$@"

# A gateway that exited during the run (a crash) fails the run whatever
# the tests say.
gw_died=""
if ! kill -0 "$gw_pid" 2>/dev/null; then
	gw_died=1
	echo "the gateway exited during the run; the end of its log:"
	tail -20 "$work/gateway.log"
fi
kill "$gw_pid" 2>/dev/null || true
wait "$gw_pid" 2>/dev/null || true
gw_pid=""
cp "$work/gateway.log" "$OUT/gateway.log"

{
	echo "== pgx $pgx_version, Gatehouse $commit, $(date -u +%Y-%m-%d)"
	echo "wall time: build ${t_build} s, direct ${t_direct} s, gateway ${t_gateway} s, total $(($(now) - t_start)) s"
	if command -v sqlite3 >/dev/null && [ -f "$work/state/gatehouse.db" ]; then
		echo "recorded: $(sqlite3 "$work/state/gatehouse.db" 'SELECT count(*) FROM sessions') sessions, $(sqlite3 "$work/state/gatehouse.db" 'SELECT count(*) FROM events') events"
	fi
	echo "gateway log, warnings and errors by message:"
	sed -n 's/.*level=\(WARN\|ERROR\) msg="\([^"]*\)".*/\1 \2/p' "$work/gateway.log" | sort | uniq -c | sort -rn | head -10
	echo
} | tee "$OUT/summary.txt"
rc=0
"$work/compare" -direct "$OUT/direct.json" -gateway "$OUT/gateway.json" -allow "$ALLOW" >"$work/compare.txt" || rc=$?
tee -a "$OUT/summary.txt" <"$work/compare.txt"
if [ -n "$gw_died" ] && [ "$rc" = 0 ]; then
	echo "failing: the gateway exited during the run" | tee -a "$OUT/summary.txt"
	rc=1
fi
echo "results in $OUT"
exit "$rc"
