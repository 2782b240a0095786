#!/usr/bin/env bash
# scripts/demo.sh - batchjob at work: one parent of 1,000,000 records split
# into 1,000 child batches, four concurrent workers (pgbench clients) that
# claim, report and finish the children through the batchjob API, the
# parent's progress watched live, and a
# final check that the incrementally rolled-up figures equal a recomputation
# from scratch.  Ten batches fail on purpose, so the parent ends COMPLETED
# with "10 out of 1000 batch jobs failed".
#
# Usage (as root on Debian 12): bash scripts/demo.sh
# Runs against a throwaway cluster of its own, which it stops on exit.

source "$(dirname "$0")/lib.sh"

RECORDS=1000000
BATCH_SIZE=1000
WORKERS=4
WORK_MS=10			# how long a worker "works" on one batch

bj_install_packages
bj_build
bj_start_cluster

export PGDATABASE=batchjob_demo
bj_psql -d postgres -c "CREATE DATABASE batchjob_demo"
bj_psql -c "CREATE EXTENSION batchjob"

# -- the parent and its children ---------------------------------------------

parent=$(bj_psql -At -v records="$RECORDS" -v batch_size="$BATCH_SIZE" <<'SQL'
SELECT job_id FROM batchjob_create_parent(
    jsonb_build_object('export', 'customers', 'format', 'csv'), 'demo')
\gset
SELECT count(*) AS children FROM batchjob_split(:job_id, :records, :batch_size)
\gset
SELECT :job_id;
SQL
)
children=$(bj_psql -At -v parent="$parent" <<'SQL'
SELECT total FROM batchjob_child_counts(:parent);
SQL
)
echo "parent job $parent: $RECORDS records split into $children batches of $BATCH_SIZE"

if [ $((children % WORKERS)) -ne 0 ]; then
	echo "demo needs the $children batches to divide among $WORKERS workers" >&2
	exit 1
fi

# -- the workers ---------------------------------------------------------------

# One pgbench transaction is one batch: claim the next child under a lease
# (its own transaction), work on it, report its figures and finish it.
# Batches whose number is a multiple of 97 fail for good; the others
# complete with batch_number % 5 records in error.  Kept in the cluster's
# directory, which lib.sh removes on exit.
worker=$BJ_CLUSTER_DIR/worker.sql
cat >"$worker" <<SQL
SELECT job_id, batch_number, batch_size
  FROM batchjob_claim('demo-worker-' || :client_id, 1, '1 minute') \gset
\sleep $WORK_MS ms
\if :batch_number % 97 = 0
SELECT batchjob_progress(:job_id, :batch_size, 0, :batch_size) IS NOT NULL AS reported \gset
SELECT batchjob_fail(:job_id, 'simulated failure in batch ' || :batch_number,
                     retry => false) IS NOT NULL AS failed \gset
\else
SELECT batchjob_progress(:job_id, :batch_size, :batch_size - :batch_number % 5,
                         :batch_number % 5) IS NOT NULL AS reported \gset
SELECT batchjob_complete(:job_id) IS NOT NULL AS completed \gset
\endif
SQL

# The progress view is exact at every moment: it adds the differences that
# concurrent workers left for the folder to the parent's stored figures.
progress() {
	bj_psql -At -v parent="$parent" <<'SQL'
SELECT format('%-10s %7s / %s records (%6s%%) %10s rec/s  children: %s pending, %s processing, %s completed, %s failed',
              status, processed_records, total_records, percent_done,
              coalesce(records_per_second::text, '-'),
              pending, processing, completed, failed)
FROM batch_job_progress WHERE job_id = :parent;
SQL
}

per_worker=$((children / WORKERS))
echo "starting $WORKERS workers, $per_worker batches each"
pgbench_log=$BJ_CLUSTER_DIR/pgbench.log
start=$(date +%s%N)
"$PG_BIN/pgbench" -n -c "$WORKERS" -j "$WORKERS" -t "$per_worker" \
	-f "$worker" >"$pgbench_log" 2>&1 &
pgbench_pid=$!

while kill -0 "$pgbench_pid" 2>/dev/null; do
	now=$(date +%s%N)
	printf '%5.1fs  %s\n' "$(((now - start) / 1000000))e-3" "$(progress)"
	sleep 0.5
done
if ! wait "$pgbench_pid"; then
	cat "$pgbench_log" >&2
	echo "pgbench failed" >&2
	exit 1
fi
now=$(date +%s%N)
printf '%5.1fs  %s\n' "$(((now - start) / 1000000))e-3" "$(progress)"
grep -E '^(number of transactions actually processed|number of failed transactions|latency average|tps)' \
	"$pgbench_log" | sed 's/^/pgbench: /'

# -- the result ------------------------------------------------------------------

# Workers that found the parent busy left their differences for the
# folder; wait for any still waiting to be folded into the stored row.
bj_psql -q -v parent="$parent" >/dev/null <<'SQL'
SELECT batchjob_fold(:parent);
SQL

echo
echo "final parent:"
bj_psql -x -v parent="$parent" <<'SQL'
SELECT job_id, status, error_details, total_records, processed_records,
       success_count, error_count, completed_at - started_at AS took
FROM batch_jobs WHERE job_id = :parent;
SQL
echo "children by status (batchjob_child_counts):"
bj_psql -v parent="$parent" <<'SQL'
SELECT * FROM batchjob_child_counts(:parent);
SQL

# The rollup kept the parent up to date one statement at a time; the repair
# path recomputes it from all 1,000 children.  Both must say the same.
agrees=$(bj_psql -At -v parent="$parent" <<'SQL'
CREATE TEMP TABLE rolled_up AS
    SELECT status, error_details, total_records, processed_records,
           success_count, error_count, child_pending, child_processing,
           child_completed, child_failed, child_cancelled
    FROM batch_jobs WHERE job_id = :parent;
CREATE TEMP TABLE recomputed AS
    SELECT status, error_details, total_records, processed_records,
           success_count, error_count, child_pending, child_processing,
           child_completed, child_failed, child_cancelled
    FROM batchjob_refresh_parent(:parent);
SELECT CASE WHEN count(*) = 0 THEN 'yes' ELSE 'no' END
FROM ((TABLE rolled_up EXCEPT ALL TABLE recomputed)
      UNION ALL
      (TABLE recomputed EXCEPT ALL TABLE rolled_up)) AS differences;
SQL
)
echo "rollup agrees with recomputation: $agrees"

# The same figures from the workers' own arithmetic, outside the database.
failed=0 success=0 errors=0
for ((n = 1; n <= children; n++)); do
	if ((n % 97 == 0)); then
		failed=$((failed + 1))
		errors=$((errors + BATCH_SIZE))
	else
		success=$((success + BATCH_SIZE - n % 5))
		errors=$((errors + n % 5))
	fi
done
expected="COMPLETED|$failed out of $children batch jobs failed|$RECORDS|$RECORDS|$success|$errors"
actual=$(bj_psql -At -v parent="$parent" <<'SQL'
SELECT concat_ws('|', status, error_details, total_records, processed_records,
                 success_count, error_count)
FROM batch_jobs WHERE job_id = :parent;
SQL
)
if [ "$actual" = "$expected" ]; then
	echo "figures match what the workers did: yes"
else
	echo "figures match what the workers did: no (expected $expected)"
fi

[ "$agrees" = yes ] && [ "$actual" = "$expected" ]
