# bench/lib.sh - what bench/run needs besides scripts/lib.sh: a throwaway
# cluster of its own on a port of its own, timed statements and pgbench
# runs, the statistics of repeated runs, and the correctness checks that
# end every benchmark.
#
# Sourced by bench/run after scripts/lib.sh (which sets -euo pipefail and
# defines PG_BIN, bj_log and bj_psql).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_PORT=${BENCH_PORT:-54339}
BENCH_OUT=${BENCH_OUT:-$BENCH_DIR/out}
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}

# -- the cluster --------------------------------------------------------------

BENCH_CLUSTER_DIR=
BENCH_PG_STARTED=

bench_stop_cluster() {
	bench_stop_shard
	if [ -n "$BENCH_PG_STARTED" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BENCH_CLUSTER_DIR/data" \
			-m fast -w stop >/dev/null 2>&1 || true
		BENCH_PG_STARTED=
	fi
	if [ -n "$BENCH_CLUSTER_DIR" ] && [ -z "${BENCH_KEEP_CLUSTER:-}" ]; then
		rm -rf "$BENCH_CLUSTER_DIR"
	fi
}

# Like bj_start_cluster in scripts/lib.sh, but on $BENCH_PORT (54339 unless
# set), so a benchmark never clashes with a test run of scripts/lib.sh on
# 54329.  Default settings: only the socket, the port and max_connections
# are given.  Exports PGHOST, PGPORT and PGUSER.
bench_start_cluster() {
	BENCH_CLUSTER_DIR=$(mktemp -d /tmp/batchjob-bench.XXXXXX)
	chown postgres: "$BENCH_CLUSTER_DIR"
	chmod 700 "$BENCH_CLUSTER_DIR"
	trap bench_stop_cluster EXIT
	trap 'exit 130' INT TERM
	runuser -u postgres -- "$PG_BIN/initdb" -D "$BENCH_CLUSTER_DIR/data" \
		-U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BENCH_CLUSTER_DIR/data" \
		-l "$BENCH_CLUSTER_DIR/server.log" -w \
		-o "-k $BENCH_CLUSTER_DIR -c listen_addresses= -p $BENCH_PORT -c max_connections=60" \
		start >/dev/null
	BENCH_PG_STARTED=1
	export PGHOST=$BENCH_CLUSTER_DIR PGPORT=$BENCH_PORT PGUSER=postgres
	bj_log "benchmark cluster running in $BENCH_CLUSTER_DIR on port $BENCH_PORT"
}

# A second server for the PL/Proxy benchmark (benchmark 11): a cluster like
# the bench cluster, with default settings, on port BENCH_PORT + 1 and its
# own socket directory, stopped with the bench cluster.  Sets
# BENCH_SHARD_HOST and BENCH_SHARD_PORT.
BENCH_SHARD_DIR=
BENCH_SHARD_STARTED=
bench_start_shard() {
	BENCH_SHARD_DIR=$(mktemp -d /tmp/batchjob-bench-shard.XXXXXX)
	chown postgres: "$BENCH_SHARD_DIR"
	chmod 700 "$BENCH_SHARD_DIR"
	BENCH_SHARD_PORT=$((BENCH_PORT + 1))
	runuser -u postgres -- "$PG_BIN/initdb" -D "$BENCH_SHARD_DIR/data" \
		-U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BENCH_SHARD_DIR/data" \
		-l "$BENCH_SHARD_DIR/server.log" -w \
		-o "-k $BENCH_SHARD_DIR -c listen_addresses= -p $BENCH_SHARD_PORT -c max_connections=60" \
		start >/dev/null
	BENCH_SHARD_STARTED=1
	BENCH_SHARD_HOST=$BENCH_SHARD_DIR
	bj_log "second shard server running in $BENCH_SHARD_DIR on port $BENCH_SHARD_PORT"
}

bench_stop_shard() {
	if [ -n "$BENCH_SHARD_STARTED" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BENCH_SHARD_DIR/data" \
			-m fast -w stop >/dev/null 2>&1 || true
		BENCH_SHARD_STARTED=
	fi
	if [ -n "$BENCH_SHARD_DIR" ] && [ -z "${BENCH_KEEP_CLUSTER:-}" ]; then
		rm -rf "$BENCH_SHARD_DIR"
	fi
	BENCH_SHARD_DIR=
}

# The CPU time (clock ticks, user + system) the bench cluster has used so
# far: its postmaster's own and that of the children it has reaped
# (cutime, cstime: every backend that exited), plus the live children's
# (backends, the folder, checkpointer, walwriter, autovacuum).  Read from
# /proc; the difference of two readings is the cluster's CPU time in
# between, whatever connected to it.
bench_cluster_cpu() {
	local pm f line rest sum=0 pid
	pm=$(head -n 1 "$BENCH_CLUSTER_DIR/data/postmaster.pid")
	for f in /proc/[0-9]*/stat; do
		{ read -r line <"$f"; } 2>/dev/null || continue	# gone meanwhile
		pid=${f#/proc/}
		pid=${pid%/stat}
		rest=${line##*) }
		# fields after "pid (comm) ": 1 state, 2 ppid, 12 utime, 13 stime, 14 cutime, 15 cstime
		set -- $rest
		if [ "$pid" = "$pm" ]; then
			sum=$((sum + ${12} + ${13} + ${14} + ${15}))
		elif [ "$2" = "$pm" ]; then
			sum=$((sum + ${12} + ${13}))
		fi
	done
	echo "$sum"
}

# A fresh database with the extension (the default version, 1.1).
bench_createdb() {
	bj_psql -d postgres -c "CREATE DATABASE $1"
	bj_psql -d "$1" -c "CREATE EXTENSION batchjob"
}

# psql -At against database $1; the rest are psql arguments.
q() {
	local db=$1
	shift
	bj_psql -At -d "$db" "$@"
}

die() {
	echo "BENCHMARK FAILED: $*" >&2
	exit 1
}

# -- measuring ------------------------------------------------------------------

# Every figure goes to one line of $BENCH_RAW: bench, variant, run, value.
BENCH_RAW=

record() {
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$BENCH_RAW"
	bj_log "$(printf '%-8s %-28s run %s: %s' "$1" "$2" "$3" "$4")"
}

# Runs the SQL on stdin in database $1 and prints the time of its LAST
# statement in ms as psql's \timing sees it (round trip, commit included);
# the statements before it are setup.  Variables: -v name=value arguments.
time_last() {
	local db=$1 out
	shift
	out=$( { echo '\timing on'; cat; } | bj_psql -d "$db" "$@") ||
		die "timed statement failed in $db"
	printf '%s\n' "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1
}

# Runs pgbench (arguments as given, -n and -M prepared added) and prints
# its tps without the initial connection time.  Fails loudly when a client
# aborted or a transaction failed: the scripts make an UPDATE that finds
# no row an error (RETURNING ... \gset), so a workload that ran out of
# jobs cannot pass for a fast one.  The log of the last run is kept in
# $BENCH_OUT/pgbench.last (this runs in a command substitution).
run_pgbench() {
	local log
	log=$(mktemp "$BENCH_OUT/pgbench.XXXXXX")
	if ! "$PG_BIN/pgbench" -n -M prepared "$@" >"$log" 2>&1; then
		cat "$log" >&2
		die "pgbench $* failed"
	fi
	if grep -q 'aborted\|number of failed transactions: [1-9]' "$log"; then
		cat "$log" >&2
		die "pgbench $* had failed transactions"
	fi
	mv "$log" "$BENCH_OUT/pgbench.last"
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$BENCH_OUT/pgbench.last"
}

# Transactions the last pgbench run processed.
pgbench_processed() {
	sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' \
		"$BENCH_OUT/pgbench.last"
}

# The median, min and max of a variant's runs: "median min max".
stats() {
	awk -F'\t' -v b="$1" -v v="$2" '$1 == b && $2 == v { print $4 }' "$BENCH_RAW" |
		sort -g |
		awk '{ x[NR] = $1 }
			END {
				if (NR == 0) { print "- - -"; exit }
				m = (NR % 2) ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
				print m, x[1], x[NR]
			}'
}

median() { stats "$1" "$2" | cut -d' ' -f1; }

# A figure with its spread: "12.3 (11.9-13.0, n=3)".
fmt_stats() {
	local n
	n=$(awk -F'\t' -v b="$1" -v v="$2" '$1 == b && $2 == v' "$BENCH_RAW" | wc -l)
	stats "$1" "$2" | awk -v n="$n" -v d="${3:-2}" \
		'{ printf "%.*f (%.*f-%.*f, n=%d)", d, $1, d, $2, d, $3, n }'
}

# -- correctness ----------------------------------------------------------------

# Folds every waiting difference: batchjob_fold() until it folds nothing,
# then batchjob_fold(parent), which waits for a lock the folder may hold,
# for each parent still named in batch_job_deltas.
fold_all() {
	local db=$1 i n
	for i in $(seq 1 100); do
		n=$(q "$db" -c "SELECT batchjob_fold()")
		[ "$n" = 0 ] && break
	done
	q "$db" >/dev/null <<'SQL'
SELECT batchjob_fold(parent_job_id)
  FROM (SELECT DISTINCT parent_job_id FROM batch_job_deltas) d;
SQL
	n=$(q "$db" -c "SELECT count(*) FROM batch_job_deltas")
	[ "$n" = 0 ] || die "$db: $n differences still waiting after folding"
}

# Checks that the stored figures of the parents named (a SQL expression
# for a bigint[]) equal what batchjob_refresh_parent recomputes from their
# children, after folding; dies naming the parents that differ.
check_parents() {
	local db=$1 parents=$2 bad
	fold_all "$db"
	bad=$(q "$db" -v parents="$parents" <<'SQL'
WITH stored AS MATERIALIZED (
    SELECT job_id, status, total_records, processed_records, success_count,
           error_count, child_pending, child_processing, child_completed,
           child_failed, child_cancelled
      FROM batch_jobs WHERE job_id = ANY (:parents))
SELECT string_agg(s.job_id::text, ', ' ORDER BY s.job_id)
  FROM stored s, LATERAL batchjob_refresh_parent(s.job_id) r
 WHERE (s.status, s.total_records, s.processed_records, s.success_count,
        s.error_count, s.child_pending, s.child_processing,
        s.child_completed, s.child_failed, s.child_cancelled)
       IS DISTINCT FROM
       (r.status, r.total_records, r.processed_records, r.success_count,
        r.error_count, r.child_pending, r.child_processing,
        r.child_completed, r.child_failed, r.child_cancelled);
SQL
)
	[ -z "$bad" ] || die "$db: parents $bad differ from batchjob_refresh_parent"
}

# Dies unless the SQL on stdin (run in database $1) prints "t".
expect_true() {
	local db=$1 what=$2 got
	got=$(q "$db")
	[ "$got" = t ] || die "$db: $what (got '$got')"
}

# Triggers off or on for a baseline; USER keeps the foreign key's own.
triggers() {
	q "$1" -c "ALTER TABLE batch_jobs $2 TRIGGER USER" >/dev/null
}
