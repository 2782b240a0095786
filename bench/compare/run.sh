#!/usr/bin/env bash
# bench/compare/run.sh - graphile-worker and pg-boss on batchjob's claim
# workload (bench/README.md, benchmark 4), for bench/run.  Benchmark-only:
# nothing here is a dependency of the extension or of its tests.
#
#   run.sh install                    node 22 and the two packages from npm,
#                                     into bench/compare/node_modules
#   run.sh HOST PORT N [RUNS [FIRST]] RUNS runs (3) of each: N no-op jobs
#                                     queued up front, 8 workers, in a fresh
#                                     database of the cluster at HOST (its
#                                     socket directory, or 127.0.0.1) : PORT
#
# Prints two lines per run and system: "graphile-worker 41923.0" (jobs/s)
# and "graphile-worker:cpu 21.5 22.0", the CPU per job (µs) of the cluster
# (read from /proc, "-" if it cannot be) and of the Node process, over the
# timed window; or a single "skipped: <why>" line when the comparison
# cannot run here (no npm, no network, a failed install).  Exits 0 then
# too: a comparison that cannot run must not stop batchjob's own
# benchmarks.  Exits 1 only on bad arguments.  What the tools print goes
# to stderr.  FIRST numbers the runs (the order of the systems rotates
# with the run number).
#
# SYSTEMS (environment) names the systems, "graphile-worker pg-boss" unless
# set; "batchjob-node" is batchjob's own Node client (clients/node, built
# into clients/node/dist beforehand: bench/run's benchmark 10 does it).

set -uo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODE=$DIR/node_modules/.bin/node
PSQL=${PSQL:-${PG_BIN:+$PG_BIN/}psql}
STAMP=$DIR/node_modules/.bench-installed

skip() {
	echo "skipped: $*"
	exit 0
}

node_ok() {
	local v
	v=$("$NODE" --version 2>/dev/null) || return 1
	v=${v#v}
	[ "${v%%.*}" -ge 22 ] 2>/dev/null
}

# Installs what package.json names (exact versions) unless the same
# package.json was installed already; fails with the reason on stdout.
install() {
	if [ -f "$STAMP" ] && cmp -s "$STAMP" "$DIR/package.json" && node_ok &&
		[ -d "$DIR/node_modules/graphile-worker" ] && [ -d "$DIR/node_modules/pg-boss" ]; then
		return 0
	fi
	command -v npm >/dev/null || { echo "no npm on this machine"; return 1; }
	echo "installing node 22, graphile-worker and pg-boss from npm into $DIR/node_modules" >&2
	if ! (cd "$DIR" && timeout 300 npm install --no-audit --no-fund --no-package-lock \
		--fetch-retries=1 --fetch-retry-mintimeout=2000 \
		--fetch-retry-maxtimeout=5000 --fetch-timeout=30000 --loglevel=error >&2); then
		echo "npm install failed (no network or no registry?)"
		return 1
	fi
	node_ok || { echo "no working node 22 after npm install"; return 1; }
	cp "$DIR/package.json" "$STAMP"
}

if [ "${1:-}" = install ]; then
	why=$(install) || skip "$why"
	exit 0
fi

[ $# -ge 3 ] || { echo "usage: $0 install | HOST PORT N [RUNS [FIRST]]" >&2; exit 1; }
HOST=$1 PORT=$2 N=$3 RUNS=${4:-3} FIRST=${5:-0}
# the bench cluster only: its socket directory, or this machine
case $HOST in
/*|127.0.0.1|localhost) ;;
*) echo "refusing host $HOST: a socket directory or 127.0.0.1 only" >&2; exit 1 ;;
esac

why=$(install) || skip "$why"

sql() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -X -q -h "$HOST" -p "$PORT" -U "${PGUSER:-postgres}" -d postgres -v ON_ERROR_STOP=1 -c "$1" >&2; }

# one run of one system, in a database of its own, dropped afterwards
one() {
	local system=$1 script=$2 r=$3 db out
	db=bench_cmp_${script%.mjs}_$r
	sql "DROP DATABASE IF EXISTS $db WITH (FORCE)" && sql "CREATE DATABASE $db" ||
		skip "could not create database $db"
	if ! out=$("$NODE" "$DIR/$script" "$HOST" "$PORT" "$db" "$N"); then
		sql "DROP DATABASE IF EXISTS $db WITH (FORCE)"
		skip "$system run $r failed"
	fi
	sql "DROP DATABASE IF EXISTS $db WITH (FORCE)"
	grep -qE "^$system [0-9.]+$" <<<"$out" || skip "$system run $r printed '$out'"
	echo "$out"
}

read -r -a systems <<<"${SYSTEMS:-graphile-worker pg-boss}"
for system in "${systems[@]}"; do
	case $system in
	graphile-worker | pg-boss) ;;
	batchjob-node)
		[ -f "$DIR/../../clients/node/dist/index.js" ] || skip "clients/node is not built (npm ci && npm run build there)" ;;
	*) echo "unknown system $system" >&2; exit 1 ;;
	esac
done
script_of() {
	case $1 in
	graphile-worker) echo graphile.mjs ;;
	pg-boss) echo pgboss.mjs ;;
	batchjob-node) echo batchjob.mjs ;;
	esac
}

for r in $(seq "$FIRST" $((FIRST + RUNS - 1))); do
	n=${#systems[@]}
	for i in $(seq 0 $((n - 1))); do
		system=${systems[$(((r + i) % n))]}
		one "$system" "$(script_of "$system")" "$r"
	done
done
