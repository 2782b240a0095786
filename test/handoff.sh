#!/usr/bin/env bash
# test/handoff.sh - the folder taking the rollups over under load, and
# giving them back when the load ends (src/fold.c, "Hand-off under load").
#
# Eight pgbench clients claim and complete children of one parent, fast
# enough that the folder holds its busy lock (an advisory lock in batchjob's
# own key space: classid 0x62617463, objid 0x686a6f62, objsubid 4).  While
# it does, a statement from another session leaves its difference in
# batch_job_deltas instead of updating the parent, and still refuses a
# child under a job that is not a parent.  When the load stops, the folder
# lets go, a lone session's changes reach the stored parent row at once
# again (as they do at any time with batchjob.defer_when_busy off), and every difference is folded: the stored counters equal the
# children's.  Prints TAP; exits non-zero when a test fails.
#
# Needs PGHOST, PGPORT and PGUSER for a running cluster with batchjob
# installed; creates and drops its own database (bj_handoff).  Takes about
# 10 seconds.

set -uo pipefail

PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
db=bj_handoff
work=$(mktemp -d /tmp/batchjob-handoff.XXXXXX)
bench_pid=
n=0
failed=0

q() { "$bindir/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"; }

cleanup() {
	if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
		kill -INT "$bench_pid" 2>/dev/null
		wait "$bench_pid" 2>/dev/null
	fi
	"$bindir/psql" -X -q -d postgres \
		-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

result() {	# result OK DESCRIPTION [DIAGNOSTIC]
	n=$((n + 1))
	if [ "$1" = 1 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		[ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/# /'
		failed=$((failed + 1))
	fi
}

# Is this database's folder holding its busy lock right now?
busy() {
	q -c "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
	       WHERE d.datname = current_database() AND l.locktype = 'advisory'
	         AND l.classid = x'62617463'::int::oid AND l.objid = x'686a6f62'::int::oid
	         AND l.objsubid = 4 AND l.granted AND l.mode = 'ExclusiveLock'"
}

# wait_for SECONDS COMMAND...: polls every 50 ms until COMMAND succeeds.
wait_for() {
	local end=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
	shift
	until "$@"; do
		[ $(( $(date +%s%N) / 1000000 )) -lt "$end" ] || return 1
		sleep 0.05
	done
}
is_busy() { [ "$(busy)" = 1 ]; }
not_busy() { [ "$(busy)" = 0 ]; }

echo "1..10"

"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
	-c "CREATE DATABASE $db" || exit 1
q -c "CREATE EXTENSION batchjob" || exit 1

# The loaded parent, with far more children than the run can finish; a
# quiet parent whose children come after all of those in claim order
# (a lower priority), so no worker touches them; and a plain job.
loaded=$(q -c "SELECT job_id FROM batchjob_create_parent('{}', 'handoff')")
quiet=$(q -c "SELECT job_id FROM batchjob_create_parent('{}', 'handoff', -1)")
q -c "SELECT count(*) FROM batchjob_split($loaded, 4000000, 100)" >/dev/null
q -c "SELECT count(*) FROM batchjob_split($quiet, 300, 100)" >/dev/null
quiet_child=$(q -c "SELECT min(job_id) FROM batch_jobs WHERE parent_job_id = $quiet")
plain=$(q -c "INSERT INTO batch_jobs (status) VALUES ('PENDING') RETURNING job_id")
q -c "ANALYZE batch_jobs"

cat >"$work/worker.sql" <<'SQL'
SELECT job_id FROM batchjob_claim('handoff-' || :client_id::text) \gset
SELECT 1 AS done FROM batchjob_complete(:job_id::bigint) \gset
SQL
"$bindir/pgbench" -n -c 8 -j 2 -T 6 -f "$work/worker.sql" "$db" \
	>"$work/pgbench.log" 2>&1 &
bench_pid=$!

# The folder takes over.
if wait_for 5 is_busy; then
	result 1 "under 8 workers the folder takes its busy lock"
else
	result 0 "under 8 workers the folder takes its busy lock" \
		"$(q -c "SELECT count(*) FROM batch_job_deltas") differences waiting"
fi

# While it holds the lock, a change from another session is left to it:
# the difference waits in batch_job_deltas (seen by the changing
# transaction itself) and the stored parent row is untouched.  Tried a few
# times, counting only tries with the lock held before and after.
deferred=0
out=
for try in 1 2 3 4 5; do
	wait_for 2 is_busy || continue
	out=$(q <<SQL
BEGIN;
UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $quiet_child;
SELECT (SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $quiet)
       || ' ' || (SELECT child_cancelled FROM batch_jobs WHERE job_id = $quiet)
       || ' ' || (SELECT cancelled FROM batchjob_child_counts($quiet));
ROLLBACK;
SQL
)
	if is_busy; then
		deferred=1
		break
	fi
done
if [ "$deferred" = 1 ] && [ "$out" = "1 0 1" ]; then
	result 1 "while the folder is busy, a change waits in batch_job_deltas; the functions still see it"
else
	result 0 "while the folder is busy, a change waits in batch_job_deltas; the functions still see it" \
		"busy before and after: $deferred; waiting, stored, counted: $out"
fi

# Unless the session sets batchjob.defer_when_busy off: then its change
# goes into the stored parent row at once (no one else folds into the
# quiet parent), busy folder or not.
out=$(q <<SQL
SET batchjob.defer_when_busy = off;
BEGIN;
UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $quiet_child;
SELECT (SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $quiet)
       || ' ' || (SELECT child_cancelled FROM batch_jobs WHERE job_id = $quiet);
ROLLBACK;
SQL
)
if [ "$out" = "0 1" ] && is_busy; then
	result 1 "with batchjob.defer_when_busy off, a change goes into the stored parent row even while the folder is busy"
else
	result 0 "with batchjob.defer_when_busy off, a change goes into the stored parent row even while the folder is busy" \
		"busy: $(busy); waiting, stored: $out"
fi

# Left for the folder or not, a child under a job that is not a parent
# is refused.
err=$(q -c "INSERT INTO batch_jobs (parent_job_id, batch_number, batch_offset, batch_size, total_records)
            VALUES ($plain, 1, 0, 100, 100)" 2>&1)
if grep -q "is not a parent" <<<"$err" && is_busy; then
	result 1 "while the folder is busy, a child under a plain job is still refused"
else
	result 0 "while the folder is busy, a child under a plain job is still refused" \
		"busy: $(busy); got: $err"
fi

wait "$bench_pid"
rc=$?
bench_pid=
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.log")
if [ "$rc" = 0 ] && ! grep -q 'aborted\|number of failed transactions: [1-9]' "$work/pgbench.log"; then
	result 1 "8 workers completed $processed children without an error"
else
	result 0 "8 workers completed children without an error" "$(tail -5 "$work/pgbench.log")"
fi

# The load gone, the folder gives the rollups back.
if wait_for 3 not_busy; then
	result 1 "once the workers stop, the folder lets go of its busy lock"
else
	result 0 "once the workers stop, the folder lets go of its busy lock"
fi

# Every difference gets folded by the folder alone.
if wait_for 5 [ "$(q -c "SELECT count(*) FROM batch_job_deltas")" = 0 ]; then
	result 1 "the folder folds every waiting difference by itself"
else
	result 0 "the folder folds every waiting difference by itself" \
		"$(q -c "SELECT count(*) FROM batch_job_deltas") still waiting"
fi

# Nothing waiting, a lone worker's claim reaches the stored row at once:
# no folder holds the parent now, and none is busy.
out=$(q <<SQL
SELECT count(*) AS claimed FROM batchjob_claim('lone') \gset
SELECT (SELECT child_processing FROM batch_jobs WHERE job_id = $loaded)
       || ' ' || (SELECT count(*) FROM batch_jobs WHERE parent_job_id = $loaded AND status = 'PROCESSING')
       || ' ' || (SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $loaded);
SQL
)
read -r stored counted waiting <<<"$out"
if [ "$stored" = "$counted" ] && [ "$waiting" = 0 ] && [ "$stored" -ge 1 ]; then
	result 1 "a lone worker's claim is in the stored parent row at once"
else
	result 0 "a lone worker's claim is in the stored parent row at once" \
		"stored, counted, waiting: $out"
fi

# The stored counters are the children's, and the workers' count.
out=$(q <<SQL
SELECT p.child_completed = c.completed AND p.child_processing = c.processing
       AND p.child_pending = c.pending AND p.processed_records = c.processed
       AND c.completed = $processed
  FROM batch_jobs p,
       (SELECT count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
               count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
               count(*) FILTER (WHERE status = 'PENDING') AS pending,
               sum(processed_records) AS processed
          FROM batch_jobs WHERE parent_job_id = $loaded) c
 WHERE p.job_id = $loaded;
SQL
)
if [ "$out" = t ]; then
	result 1 "the stored parent row equals its children and the workers' $processed completions"
else
	result 0 "the stored parent row equals its children and the workers' $processed completions" \
		"$(q -c "SELECT child_pending, child_processing, child_completed, processed_records FROM batch_jobs WHERE job_id = $loaded")"
fi

out=$(q -c "SELECT count(*) FROM batchjob_verify()")
if [ "$out" = 0 ]; then
	result 1 "batchjob_verify() finds nothing wrong"
else
	result 0 "batchjob_verify() finds nothing wrong" "$(q -c "SELECT * FROM batchjob_verify()")"
fi

[ "$failed" -eq 0 ]
