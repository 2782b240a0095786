#!/usr/bin/env bash
# test/stress/run.sh - the multi-client stress test of batchjob.
#
# Eight pgbench clients claim, report on, complete and fail 5500 child
# jobs under four roots (two 'continue', one 'fail_fast', and one
# with three sub-parents, one of them 'fail_fast'), recording
# every claim and every finish in audit tables; they also reap the
# leases of five claims a "crashed" worker abandoned.  A single worker then
# drains whatever is left (jobs still backing off after a failure), and
# checks.sql asserts that no job was claimed twice or held by two workers
# at once, that every job ended as the worker rules say, and that every
# parent's stored progress equals both a direct count over its children and
# batchjob_refresh_parent()'s recomputation.  Output is TAP; exits non-zero
# when any check fails.  See setup.sql for the jobs and the worker rules.
#
# Needs PGHOST, PGPORT and PGUSER for a running cluster with batchjob
# installed (scripts/test.sh exports them); creates and drops its own
# database, BJ_STRESS_DB (default bj_stress; BJ_STRESS_KEEP=1 keeps it for
# a look afterwards).  A run takes about 12 seconds on two cores; whatever
# happens, pgbench, the drain and the wait for the folder all stop within
# BJ_STRESS_BUDGET seconds (default 60) of the start.  BJ_STRESS_SHARE
# (default 115) sets the pgbench transactions as a percentage of the jobs;
# below 100 leaves more work to the drain.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
db=${BJ_STRESS_DB:-bj_stress}
clients=8
threads=2
share=${BJ_STRESS_SHARE:-115}	# percent of the jobs' count run as transactions
budget=${BJ_STRESS_BUDGET:-60}
work=$(mktemp -d /tmp/bj_stress.XXXXXX)

psql_db() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
note() { printf '# %s\n' "$*"; }

cleanup() {
	if [ -z "${BJ_STRESS_KEEP:-}" ]; then
		"$bindir/psql" -X -q -d postgres \
			-c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
timeout_s=$(( budget * 2 / 3 ))		# pgbench
drain_end=$(( start + budget - budget / 6 ))	# the drain
fold_end=$(( start + budget ))			# the wait for the folder
"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
	-c "CREATE DATABASE \"$db\""
psql_db -c "CREATE EXTENSION batchjob"
psql_db -f "$here/setup.sql" >"$work/setup.log"
children=$(psql_db -At -c "SELECT count(*) FROM batch_jobs WHERE NOT is_parent")
note "$children child jobs under $(psql_db -At -c "SELECT count(*) FROM batch_jobs WHERE is_parent") parents"

sed 's/@WORKER@/w/g' "$here/worker.sql" >"$work/worker.sql"
sed 's/@WORKER@/drain/g' "$here/worker.sql" >"$work/drain.sql"

# About one claim per job and client share, plus room for retries and for
# the idle rounds near the end; what is left over, the drain finishes.
per_client=$(( (children * share / 100 + clients - 1) / clients ))
note "pgbench: $clients clients, $threads threads, $per_client transactions each, stopped after ${timeout_s}s"
set +e
timeout --signal=INT --kill-after=5 "$timeout_s" \
	"$bindir/pgbench" -n -c "$clients" -j "$threads" -t "$per_client" \
	--failures-detailed --verbose-errors -f "$work/worker.sql" "$db" >"$work/pgbench.log" 2>&1
pgbench_rc=$?
set -e
grep -E '^(tps|number of (transactions actually processed|failed transactions|serialization failures|deadlock failures)|latency average)' \
	"$work/pgbench.log" | sed 's/^/# /' || true
pgbench_failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$work/pgbench.log")

# Drain: reap expired leases and run one worker until no job is PENDING
# or PROCESSING.
drained=0
deadline=$drain_end
while :; do
	left=$(psql_db -At -c "SELECT count(*) FROM batch_jobs WHERE NOT is_parent AND status IN ('PENDING', 'PROCESSING')")
	if [ "$left" -eq 0 ]; then
		drained=1
		break
	fi
	[ "$(date +%s)" -lt "$deadline" ] || break
	psql_db -c "INSERT INTO stress_reaps (reaped) SELECT batchjob_reap()"
	timeout 10 "$bindir/pgbench" -n -c 1 -t 100 -f "$work/drain.sql" "$db" >>"$work/drain.log" 2>&1 || true
	sleep 0.2
done
# The rollup defers a difference when another transaction holds the parent;
# the folder background worker must fold every one of them by itself.
folded=0
deadline=$fold_end
waiting0=$(psql_db -At -c "SELECT count(*) FROM batch_job_deltas")
while :; do
	waiting=$(psql_db -At -c "SELECT count(*) FROM batch_job_deltas")
	if [ "$waiting" -eq 0 ]; then
		folded=1
		break
	fi
	[ "$(date +%s)" -lt "$deadline" ] || break
	sleep 0.2
done
deferred=$(psql_db -At -c "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'batch_job_deltas'")
note "rollup differences deferred: about ${deferred:-?}; unfolded when the drain ended: $waiting0, at the end of the wait: $waiting"
if [ "$folded" -eq 0 ]; then
	psql_db -c "SELECT batchjob_fold()" >/dev/null
fi
note "drain: $left jobs left, $(psql_db -At -c "SELECT coalesce(sum(reaped), 0) FROM stress_reaps") reaped in all, $(psql_db -At -c "SELECT count(*) FROM stress_claims WHERE worker LIKE 'drain%'") claimed by the drain worker"

results=()
add_result() {	# bad-count description example
	results+=("$1"$'\t'"$2"$'\t'"$3")
}

if [ "$pgbench_rc" -eq 0 ] && [ "${pgbench_failed:-x}" = 0 ]; then
	add_result 0 "pgbench: every client ran to the end without an error" ""
else
	add_result 1 "pgbench: every client ran to the end without an error" \
		"exit status $pgbench_rc, failed transactions ${pgbench_failed:-?}; $(grep -m3 -iE 'error|abort' "$work/pgbench.log" | tr '\n' ' ')"
fi
if [ "$drained" -eq 1 ]; then
	add_result 0 "the drain left no job PENDING or PROCESSING in time" ""
else
	add_result "$left" "the drain left no job PENDING or PROCESSING in time" \
		"$left jobs left"
fi
if [ "$folded" -eq 1 ]; then
	add_result 0 "the folder folded every deferred rollup difference by itself in time" ""
else
	add_result "$waiting" "the folder folded every deferred rollup difference by itself in time" \
		"$waiting differences still in batch_job_deltas"
fi

set +e
psql_db -f "$here/checks.sql" >"$work/checks.out" 2>"$work/checks.err"
checks_rc=$?
set -e
while IFS= read -r line; do
	results+=("$line")
done <"$work/checks.out"
if [ "$checks_rc" -ne 0 ]; then
	add_result 1 "checks.sql ran" "$(tr '\n' ' ' <"$work/checks.err")"
fi

echo "1..${#results[@]}"
n=0
failures=0
for r in "${results[@]}"; do
	IFS=$'\t' read -r bad desc example <<<"$r"
	n=$((n + 1))
	if [ "$bad" = 0 ]; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		note "  $bad offending; first: $example"
		failures=$((failures + 1))
	fi
done

note "outcomes: $(psql_db -At -c "SELECT string_agg(outcome || ' ' || n, ', ' ORDER BY outcome) FROM (SELECT regexp_replace(outcome, ':.*', '') AS outcome, count(*) AS n FROM stress_finishes GROUP BY 1) s")"
note "parents: $(psql_db -At -c "SELECT string_agg(sp.name || ' ' || p.status || ' (' || p.child_completed || ' done, ' || p.child_failed || ' failed, ' || p.child_cancelled || ' cancelled)', '; ' ORDER BY sp.name) FROM stress_parents sp JOIN batch_jobs p USING (job_id)")"
note "took $(( $(date +%s) - start ))s"
[ "$failures" -eq 0 ]
