-- bench/complete_reload.sql - the approach batchjob replaces (run with the
-- table's triggers disabled): complete a child, then reload all children
-- of its parent and store the recomputed figures and status, in one
-- transaction.  The same children as complete.sql, in the same order.
\set id :first + :client_id * :slice + :n
BEGIN;
UPDATE batch_jobs SET status = 'COMPLETED'
 WHERE job_id = :id AND status = 'PROCESSING' RETURNING job_id \gset
SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
       count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
       coalesce(sum(total_records), 0) AS total,
       coalesce(sum(processed_records), 0) AS processed,
       coalesce(sum(success_count), 0) AS success,
       coalesce(sum(error_count), 0) AS errors,
       CASE WHEN count(*) FILTER (WHERE status = 'PENDING') = count(*) THEN 'PENDING'
            WHEN count(*) FILTER (WHERE status IN ('PENDING', 'PROCESSING')) > 0 THEN 'PROCESSING'
            WHEN count(*) FILTER (WHERE status = 'FAILED') = count(*) THEN 'FAILED'
            WHEN count(*) FILTER (WHERE status = 'CANCELLED') = count(*) THEN 'CANCELLED'
            ELSE 'COMPLETED' END AS parent_status
  FROM batch_jobs WHERE parent_job_id = :parent \gset
UPDATE batch_jobs
   SET child_pending = :pending, child_processing = :processing,
       child_completed = :completed, child_failed = :failed,
       child_cancelled = :cancelled, total_records = :total,
       processed_records = :processed, success_count = :success,
       error_count = :errors, status = :parent_status, updated_at = now()
 WHERE job_id = :parent RETURNING job_id \gset
COMMIT;
\set n :n + 1
