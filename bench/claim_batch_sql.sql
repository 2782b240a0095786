-- bench/claim_batch_sql.sql - batch mode without the API: the completion
-- and the claim of batchjob_complete_and_claim (src/lifecycle.c) as one
-- plain SQL statement on batch_jobs, which bench/run runs with its
-- triggers disabled (row 4f: the table's own cost per job, with no guard,
-- rollup or function).  Driven as claim_batch.sql is (-D n=0 -D txns=N
-- -D ids={}, -t N+1).  The completion must run first, as in the function:
-- a claim's SKIP LOCKED scan can lock (and keep locked) a row it then
-- passes over, one another worker claimed a moment ago, and that worker's
-- completion, run after its own claim, would wait for it while this one
-- waits the same way (a deadlock).  So the claim reads the completion's
-- count before it scans.
\if :n < :txns
WITH done AS (
  UPDATE batch_jobs SET status = 'COMPLETED'
   WHERE job_id = ANY (ARRAY(
          SELECT job_id FROM batch_jobs WHERE job_id = ANY (:ids::bigint[])
             AND status = (SELECT 'PROCESSING'::text) AND NOT is_parent
           ORDER BY job_id FOR UPDATE))
     AND status = (SELECT 'PROCESSING'::text) RETURNING job_id),
claimed AS (
  UPDATE batch_jobs SET status = 'PROCESSING', locked_by = 'worker-' || :client_id::text,
         locked_until = clock_timestamp() + interval '5 minutes', attempts = attempts + 1
   WHERE job_id = ANY (ARRAY(
          SELECT job_id FROM batch_jobs WHERE status = 'PENDING' AND NOT is_parent
             AND run_at <= clock_timestamp() AND (SELECT count(*) FROM done) >= 0
           ORDER BY priority DESC, created_at, job_id LIMIT 100
             FOR UPDATE SKIP LOCKED))
     AND status = 'PENDING' RETURNING job_id)
SELECT (SELECT array_agg(job_id) FROM claimed) AS ids \gset
\else
UPDATE batch_jobs SET status = 'COMPLETED'
 WHERE job_id = ANY (:ids::bigint[]) AND status = (SELECT 'PROCESSING'::text);
\endif
\set n :n + 1
