--
-- rollup: a parent's progress and status follow its children through plain
-- INSERT, UPDATE and DELETE statements, with no function to call.
--
-- Jobs are named through psql variables set with \gset.  Every suite starts
-- from an empty table numbering jobs from 1, so its output is the same
-- whichever suites ran before it.
--
TRUNCATE batch_jobs RESTART IDENTITY;

-- whether each parent's figures match a fresh count of its children: the
-- counts by status and the sums of total, processed, success and errors
CREATE TEMP VIEW parent_recount AS
SELECT p.job_id,
       (p.child_pending, p.child_processing, p.child_completed,
        p.child_failed, p.child_cancelled, p.total_records,
        p.processed_records, p.success_count, p.error_count)
       = (c.pending, c.processing, c.completed, c.failed, c.cancelled,
          c.total, c.processed, c.success, c.errors) AS matches_recount
  FROM batch_jobs p,
       LATERAL (SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
                       count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
                       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
                       count(*) FILTER (WHERE status = 'FAILED') AS failed,
                       count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
                       coalesce(sum(total_records), 0)::bigint AS total,
                       coalesce(sum(processed_records), 0)::bigint AS processed,
                       coalesce(sum(success_count), 0)::bigint AS success,
                       coalesce(sum(error_count), 0)::bigint AS errors
                  FROM batch_jobs
                 WHERE parent_job_id = p.job_id) c
 WHERE p.is_parent;

-- what a parent shows: its status; its children by status; the sums of their
-- total, processed, success and error counts; error_details; whether it has
-- started and completed; and whether all that matches a fresh count
PREPARE progress(bigint) AS
SELECT p.status,
       p.child_pending AS pending, p.child_processing AS processing,
       p.child_completed AS completed, p.child_failed AS failed,
       p.child_cancelled AS cancelled,
       p.total_records AS total, p.processed_records AS processed,
       p.success_count AS success, p.error_count AS errors,
       p.error_details,
       p.started_at IS NOT NULL AS started_at_set,
       p.completed_at IS NOT NULL AS completed_at_set,
       r.matches_recount
  FROM batch_jobs p JOIN parent_recount r USING (job_id)
 WHERE p.job_id = $1;

--
-- One parent from start to finish
--

-- a parent with an estimate of 500 records
SELECT job_id AS leads
  FROM batchjob_create_parent('{"file": "leads.csv"}', 'alice',
                              total_records => 500) \gset

-- three children inserted with plain SQL in one statement: all PENDING, so
-- the parent is PENDING, and its total is their sum (200 + 200 + 50) in
-- place of its own estimate
INSERT INTO batch_jobs
       (parent_job_id, batch_number, batch_offset, batch_size, total_records)
VALUES (:leads, 1, 0, 200, 200),
       (:leads, 2, 200, 200, 200),
       (:leads, 3, 400, 50, 50);
EXECUTE progress(:leads);

-- a worker takes batch 1: some child PROCESSING, so the parent is PROCESSING
-- and has started
UPDATE batch_jobs SET status = 'PROCESSING'
 WHERE parent_job_id = :leads AND batch_number = 1;
EXECUTE progress(:leads);

-- the worker's progress on batch 1 adds up on the parent
UPDATE batch_jobs
   SET processed_records = 120, success_count = 117, error_count = 3
 WHERE parent_job_id = :leads AND batch_number = 1;
EXECUTE progress(:leads);

-- batch 2 fails while batch 3 is still pending: the parent stays PROCESSING,
-- not finished and without error_details (the reference design wrongly
-- declared it COMPLETED at this point)
UPDATE batch_jobs
   SET status = 'FAILED', processed_records = 80, error_count = 80,
       error_details = 'remote API answered 503'
 WHERE parent_job_id = :leads AND batch_number = 2;
EXECUTE progress(:leads);

-- batch 1 completes; batch 3 is still pending, so still PROCESSING
UPDATE batch_jobs
   SET status = 'COMPLETED', processed_records = 200, success_count = 196,
       error_count = 4
 WHERE parent_job_id = :leads AND batch_number = 1;
EXECUTE progress(:leads);

-- batch 3 completes: every child has finished and one of them failed, so the
-- parent is COMPLETED, says how many failed, and has completed
UPDATE batch_jobs
   SET status = 'COMPLETED', processed_records = 50, success_count = 50
 WHERE parent_job_id = :leads AND batch_number = 3;
EXECUTE progress(:leads);

-- the failed batch 2 is put back to PENDING for a retry: the parent reopens,
-- PROCESSING again, with completed_at and error_details cleared
UPDATE batch_jobs
   SET status = 'PENDING', processed_records = 0, error_count = 0,
       error_details = NULL
 WHERE parent_job_id = :leads AND batch_number = 2;
EXECUTE progress(:leads);

-- the retry succeeds: COMPLETED with no failure to report
UPDATE batch_jobs
   SET status = 'COMPLETED', processed_records = 200, success_count = 199,
       error_count = 1
 WHERE parent_job_id = :leads AND batch_number = 2;
EXECUTE progress(:leads);

-- batchjob_refresh_parent() recomputes the parent from all its children and
-- finds nothing to change: the row before the refresh ...
SELECT status, child_pending, child_processing, child_completed,
       child_failed, child_cancelled, total_records, processed_records,
       success_count, error_count, error_details,
       completed_at IS NOT NULL AS completed_at_set
  FROM batch_jobs WHERE job_id = :leads;
-- ... and the row it returns
SELECT status, child_pending, child_processing, child_completed,
       child_failed, child_cancelled, total_records, processed_records,
       success_count, error_count, error_details,
       completed_at IS NOT NULL AS completed_at_set
  FROM batchjob_refresh_parent(:leads);

--
-- One statement for all the children
--

-- four batches of 250
SELECT job_id AS orders
  FROM batchjob_create_parent('{"table": "orders"}', 'bob') \gset
SELECT count(*) AS batches FROM batchjob_split(:orders, 1000, 250);
EXECUTE progress(:orders);

-- a single UPDATE finishes all four, each with a different error count
-- (batch n has n errors): the parent is COMPLETED with exact sums,
-- success 1000 - 10 = 990 and errors 1 + 2 + 3 + 4 = 10
UPDATE batch_jobs
   SET status = 'COMPLETED', processed_records = total_records,
       success_count = total_records - batch_number,
       error_count = batch_number
 WHERE parent_job_id = :orders;
EXECUTE progress(:orders);

--
-- How finished children decide a parent's status
--

-- all children FAILED: the parent is FAILED
SELECT job_id AS all_failed
  FROM batchjob_create_parent('{"case": "all failed"}', 'ops') \gset
SELECT count(*) AS batches FROM batchjob_split(:all_failed, 30, 10);
UPDATE batch_jobs
   SET status = 'FAILED', processed_records = 10, error_count = 10,
       error_details = 'file not found'
 WHERE parent_job_id = :all_failed;
EXECUTE progress(:all_failed);

-- all children CANCELLED: the parent is CANCELLED
SELECT job_id AS all_cancelled
  FROM batchjob_create_parent('{"case": "all cancelled"}', 'ops') \gset
SELECT count(*) AS batches FROM batchjob_split(:all_cancelled, 30, 10);
UPDATE batch_jobs SET status = 'CANCELLED'
 WHERE parent_job_id = :all_cancelled;
EXECUTE progress(:all_cancelled);

-- some COMPLETED and the rest CANCELLED: the parent is COMPLETED
SELECT job_id AS some_cancelled
  FROM batchjob_create_parent('{"case": "some cancelled"}', 'ops') \gset
SELECT count(*) AS batches FROM batchjob_split(:some_cancelled, 30, 10);
UPDATE batch_jobs
   SET status = 'COMPLETED', processed_records = 10, success_count = 10
 WHERE parent_job_id = :some_cancelled AND batch_number = 1;
UPDATE batch_jobs SET status = 'CANCELLED'
 WHERE parent_job_id = :some_cancelled AND batch_number > 1;
EXECUTE progress(:some_cancelled);

-- some FAILED and the rest CANCELLED, none COMPLETED: also COMPLETED, with
-- the failures counted in error_details
SELECT job_id AS failed_cancelled
  FROM batchjob_create_parent('{"case": "failed and cancelled"}', 'ops') \gset
SELECT count(*) AS batches FROM batchjob_split(:failed_cancelled, 30, 10);
UPDATE batch_jobs SET status = 'FAILED', error_details = 'disk full'
 WHERE parent_job_id = :failed_cancelled AND batch_number = 1;
UPDATE batch_jobs SET status = 'CANCELLED'
 WHERE parent_job_id = :failed_cancelled AND batch_number > 1;
EXECUTE progress(:failed_cancelled);

-- a parent whose children all FAILED reopens when one is retried: PROCESSING,
-- with completed_at and error_details cleared
UPDATE batch_jobs
   SET status = 'PROCESSING', processed_records = 0, error_count = 0,
       error_details = NULL
 WHERE parent_job_id = :all_failed AND batch_number = 1;
EXECUTE progress(:all_failed);

--
-- Moving and deleting children
--

-- two parents: east with three batches of 10, west with two
SELECT job_id AS east
  FROM batchjob_create_parent('{"region": "east"}', 'ops') \gset
SELECT count(*) AS batches FROM batchjob_split(:east, 30, 10);
SELECT job_id AS west
  FROM batchjob_create_parent('{"region": "west"}', 'ops') \gset
SELECT count(*) AS batches FROM batchjob_split(:west, 20, 10);

-- east's batch 3 completes
UPDATE batch_jobs
   SET status = 'COMPLETED', processed_records = 10, success_count = 8,
       error_count = 2
 WHERE parent_job_id = :east AND batch_number = 3;
EXECUTE progress(:east);

-- and is then moved to west as west's batch 3: east loses its figures (its
-- other batches are PENDING, but east has started, so it stays PROCESSING),
-- west gains them and is PROCESSING
UPDATE batch_jobs SET parent_job_id = :west, batch_number = 3
 WHERE parent_job_id = :east AND batch_number = 3;
EXECUTE progress(:east);
EXECUTE progress(:west);

-- deleting west's two pending batches leaves only the completed one: west is
-- COMPLETED
DELETE FROM batch_jobs WHERE parent_job_id = :west AND status = 'PENDING';
EXECUTE progress(:west);

-- deleting one of east's batches takes its records off east's total
DELETE FROM batch_jobs WHERE parent_job_id = :east AND batch_number = 2;
EXECUTE progress(:east);

-- deleting a parent deletes its children with it
SELECT count(*) AS east_children FROM batch_jobs WHERE parent_job_id = :east;
DELETE FROM batch_jobs WHERE job_id = :east;
SELECT count(*) AS east_jobs FROM batch_jobs
 WHERE job_id = :east OR parent_job_id = :east;

-- after all of the above, every remaining parent still matches a fresh
-- count of its children
SELECT p.criteria, r.matches_recount
  FROM batch_jobs p JOIN parent_recount r USING (job_id)
 ORDER BY p.job_id;
