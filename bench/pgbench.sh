#!/usr/bin/env bash
# pgbench.sh compares pgbench through Gatehouse with direct PostgreSQL and,
# when installed, PgBouncer, in one interleaved run: every round runs each
# workload against each target in turn, so load changes on the machine hit
# all targets alike. It reports median TPS per workload and target, the
# ratio to direct, the latency Gatehouse adds per statement, and the CPU
# time (user + system) the proxy process (Gatehouse, PgBouncer) spent per
# transaction: a measure that varies much less than TPS when the machine is
# noisy.
#
# Usage (from the repository root):
#   bench/pgbench.sh                 # defaults below
#   ROUNDS=3 DURATION=10 CLIENTS=8 SCALE=10 bench/pgbench.sh
#
# Needs: PostgreSQL on $PGHOST:$PGPORT with trust authentication for
# $PGUSER (the test machine's setup), pgbench (PATH or
# /usr/lib/postgresql/*/bin), Go; PgBouncer optional (apt-get install
# pgbouncer). Runs as root or as a normal user; PgBouncer runs as the
# "postgres" user when started as root.
#
# Gatehouse runs with the benchmark policy in bench/policy (classification,
# decision, a mask rule that applies to every result, SQLite recording of
# every statement) through bench/pgserve, which is the gateway of
# `gatehouse serve` plus a token file and an optional pprof listener
# (PPROF=127.0.0.1:6061).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
SCALE=${SCALE:-10}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB=${DB:-gh_pgbench}
IDLE_CONNS=${IDLE_CONNS:-50}
WARMUP=${WARMUP:-2}
PPROF=${PPROF:-}
# GATEHOUSE_GOMAXPROCS: GOMAXPROCS for the gateways (empty: Go's default,
# one per core). 1 runs the gateway's Go code on one OS thread at a time,
# as PgBouncer runs on one thread.
GATEHOUSE_GOMAXPROCS=${GATEHOUSE_GOMAXPROCS:-}
# BASELINE_PGSERVE: a pgserve binary built from another revision; it runs as
# a fourth target, "baseline", interleaved with the others (before/after
# comparisons on a noisy machine).
BASELINE_PGSERVE=${BASELINE_PGSERVE:-}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gatehouse-pgbench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -1 || true)
[ -x "$PGBENCH" ] || { echo "pgbench not found: apt-get install postgresql-contrib" >&2; exit 1; }
PSQL=$(command -v psql || true)
[ -x "$PSQL" ] || { echo "psql not found: apt-get install postgresql-client" >&2; exit 1; }

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== machine"
echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "kernel: $(uname -r)"
echo "postgres: $("$PSQL" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -Atc 'SHOW server_version' postgres)"
echo "pgbench: $("$PGBENCH" --version)"
echo "go: $(go version)"
echo "gatehouse: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- runtime bench || echo '+dirty')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "gateway GOMAXPROCS: ${GATEHOUSE_GOMAXPROCS:-default ($(nproc))}"

echo "== setup: pgbench -i -s $SCALE $DB"
"$PSQL" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" postgres
"$PGBENCH" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -i -q -s "$SCALE" "$DB" >/dev/null 2>&1

echo "== starting Gatehouse"
if [ -n "${PGSERVE:-}" ]; then
	cp "$PGSERVE" "$work/pgserve" # a prebuilt bench/pgserve
else
	(cd "$root" && go build -o "$work/pgserve" ./bench/pgserve)
fi
[ -n "$PPROF" ] || PPROF=127.0.0.1:$(freeport)
# start_gateway BINARY NAME [ARGS...]: starts pgserve, sets ${NAME}_PORT,
# ${NAME}_TOKEN and ${NAME}_PID.
start_gateway() {
	local bin=$1 name=$2
	shift 2
	GOMAXPROCS=$GATEHOUSE_GOMAXPROCS "$bin" -policy "$root/bench/policy" -state "$work/$name" -backend "$PGHOST:$PGPORT" \
		-database "$DB" -user "$PGUSER" -token-out "$work/$name.token" -addr-out "$work/$name.addr" "$@" \
		2>"$work/$name.log" &
	local pid=$!
	pids+=("$pid")
	for _ in $(seq 300); do [ -s "$work/$name.addr" ] && break; sleep 0.1; done
	[ -s "$work/$name.addr" ] || { echo "$name did not start:"; cat "$work/$name.log"; exit 1; }
	local addr
	addr=$(cat "$work/$name.addr")
	printf -v "${name}_PORT" '%s' "${addr##*:}"
	printf -v "${name}_TOKEN" '%s' "$(cat "$work/$name.token")"
	printf -v "${name}_PID" '%s' "$pid"
}
start_gateway "$work/pgserve" gh -pprof "$PPROF"
GH_PORT=$gh_PORT GH_TOKEN=$gh_TOKEN gh_pid=$gh_PID
if [ -n "$BASELINE_PGSERVE" ]; then
	echo "== starting the baseline gateway ($BASELINE_PGSERVE)"
	start_gateway "$BASELINE_PGSERVE" base
fi

bouncer=""
if command -v pgbouncer >/dev/null 2>&1; then
	echo "== starting PgBouncer (session pooling)"
	PB_PORT=$(freeport)
	cat >"$work/pgbouncer.ini" <<INI
[databases]
$DB = host=$PGHOST port=$PGPORT dbname=$DB user=$PGUSER
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
	echo "\"$PGUSER\" \"\"" >"$work/userlist.txt"
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$work" "$work"/pgbouncer.ini "$work"/userlist.txt
		runuser -u postgres -- pgbouncer -d "$work/pgbouncer.ini"
	else
		pgbouncer -d "$work/pgbouncer.ini"
	fi
	for _ in $(seq 100); do [ -s "$work/pgbouncer.pid" ] && break; sleep 0.1; done
	pids+=("$(cat "$work/pgbouncer.pid")")
	bouncer=1
else
	echo "== PgBouncer not installed (apt-get install pgbouncer); skipping it"
fi

CLK_TCK=$(getconf CLK_TCK)
# cputicks PID: user + system CPU time of a process, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run TARGET WORKLOAD: one pgbench run; prints "tps latency_ms
# proxy_cpu_us_per_transaction" (the last is "-" for direct).
run() {
	local target=$1 workload=$2 args
	case $workload in
	select-simple) args=(-S -M simple) ;;
	select-prepared) args=(-S -M prepared) ;;
	tpcb-simple) args=(-M simple) ;;
	esac
	local out pid="" t0=0
	case $target in
	gatehouse) pid=$gh_pid ;;
	baseline) pid=$base_PID ;;
	pgbouncer) pid=$(cat "$work/pgbouncer.pid") ;;
	esac
	[ -z "$pid" ] || t0=$(cputicks "$pid")
	case $target in
	direct) out=$("$PGBENCH" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -n "${args[@]}" -c "$CLIENTS" -j "$THREADS" -T "$DURATION" "$DB" 2>&1) ;;
	gatehouse) out=$(PGPASSWORD=$GH_TOKEN "$PGBENCH" -h 127.0.0.1 -p "$GH_PORT" -U bench-agent -n "${args[@]}" -c "$CLIENTS" -j "$THREADS" -T "$DURATION" bench-db 2>&1) ;;
	baseline) out=$(PGPASSWORD=$base_TOKEN "$PGBENCH" -h 127.0.0.1 -p "$base_PORT" -U bench-agent -n "${args[@]}" -c "$CLIENTS" -j "$THREADS" -T "$DURATION" bench-db 2>&1) ;;
	pgbouncer) out=$("$PGBENCH" -h 127.0.0.1 -p "$PB_PORT" -U "$PGUSER" -n "${args[@]}" -c "$CLIENTS" -j "$THREADS" -T "$DURATION" "$DB" 2>&1) ;;
	esac
	local tps lat n cpu=-
	tps=$(awk '/^tps = /{print $3}' <<<"$out")
	lat=$(awk '/^latency average = /{print $4}' <<<"$out")
	n=$(awk '/^number of transactions actually processed: /{print $6}' <<<"$out")
	if [ -n "$pid" ] && [ "${n:-0}" -gt 0 ]; then
		# CPU time (user + system) of the proxy process per transaction.
		cpu=$(awk -v a="$t0" -v b="$(cputicks "$pid")" -v hz="$CLK_TCK" -v n="$n" 'BEGIN{printf "%.1f", (b - a) * 1e6 / hz / n}')
	fi
	if [ -z "$tps" ] || grep -q "number of failed transactions: [1-9]" <<<"$out"; then
		echo "pgbench against $target ($workload) failed:" >&2
		echo "$out" >&2
		exit 1
	fi
	echo "$tps $lat $cpu"
}

echo "== idle connection memory"
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
# Go heap in use after a forced GC, and goroutine stacks, from pprof.
gomem() { curl -s "http://$PPROF/debug/pprof/heap?gc=1&debug=1" | awk '/^# HeapAlloc = /{h=$4} /^# Stack = /{s=$4} END{print h+s}'; }
gobefore=$(gomem)
before=$(rss "$gh_pid")
mkfifo "$work/hold"
idle_pids=()
for _ in $(seq "$IDLE_CONNS"); do
	PGPASSWORD=$GH_TOKEN "$PSQL" -X -q -h 127.0.0.1 -p "$GH_PORT" -U bench-agent bench-db <"$work/hold" >/dev/null 2>&1 &
	idle_pids+=($!)
	pids+=($!)
done
exec 9>"$work/hold" # one writer keeps every psql waiting on stdin
for _ in $(seq 300); do
	n=$("$PSQL" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND state = 'idle' AND application_name = 'psql'" postgres)
	[ "$n" -ge "$IDLE_CONNS" ] && break
	sleep 0.1
done
after=$(rss "$gh_pid")
goafter=$(gomem)
exec 9>&-
wait "${idle_pids[@]}" 2>/dev/null || true
echo "gateway RSS ${before} KiB with no client, ${after} KiB with $IDLE_CONNS idle clients: $(((after - before) / IDLE_CONNS)) KiB per idle connection"
echo "Go heap in use + stacks after GC: $((gobefore / 1024)) KiB, then $((goafter / 1024)) KiB: $(((goafter - gobefore) / 1024 / IDLE_CONNS)) KiB per idle connection"

targets=(direct gatehouse)
[ -n "$BASELINE_PGSERVE" ] && targets+=(baseline)
[ -n "$bouncer" ] && targets+=(pgbouncer)
workloads=(select-simple select-prepared tpcb-simple)
echo "== warm-up: ${WARMUP}s per workload and target"
for w in "${workloads[@]}"; do
	for t in "${targets[@]}"; do
		DURATION=$WARMUP run "$t" "$w" >/dev/null
	done
done
echo "== $ROUNDS rounds x ${#workloads[@]} workloads x ${#targets[@]} targets, $DURATION s each, $CLIENTS clients, $THREADS threads, scale $SCALE"
: >"$work/results"
for round in $(seq "$ROUNDS"); do
	for w in "${workloads[@]}"; do
		# Rotate the target order each round.
		n=${#targets[@]}
		for i in $(seq 0 $((n - 1))); do
			t=${targets[$(((i + round) % n))]}
			r=$(run "$t" "$w")
			echo "$round $w $t $r" | tee -a "$work/results"
		done
	done
done

echo "== results (median of $ROUNDS rounds)"
awk -v targets="${targets[*]}" '
	{ tps[$2" "$3] = tps[$2" "$3] " " $4; lat[$2" "$3] = lat[$2" "$3] " " $5; cpu[$2" "$3] = cpu[$2" "$3] " " $6 }
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		nt = split(targets, T, " ")
		split("select-simple select-prepared tpcb-simple", W, " ")
		# targets in the order given
		stmts["select-simple"] = 1; stmts["select-prepared"] = 1; stmts["tpcb-simple"] = 7
		printf "| workload | target | TPS (median) | vs direct | latency ms | added per statement | proxy CPU per transaction |\n|---|---|---:|---:|---:|---:|---:|\n"
		for (w = 1; w <= 3; w++) {
			dt = median(tps[W[w]" direct"]); dl = median(lat[W[w]" direct"])
			for (t = 1; t <= nt; t++) {
				k = W[w]" "T[t]; m = median(tps[k]); l = median(lat[k])
				c = (T[t] == "direct") ? "" : sprintf("%.0f us", median(cpu[k]))
				printf "| %s | %s | %.0f | %.2fx | %.3f | %s | %s |\n", W[w], T[t], m, m / dt, l, (T[t] == "direct") ? "" : sprintf("%+.0f us", (l - dl) * 1000 / stmts[W[w]]), c
			}
		}
	}' "$work/results"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
