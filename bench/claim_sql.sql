-- bench/claim_sql.sql - 4a's cycle without the API: the two statements
-- batchjob_claim and batchjob_complete run (src/lifecycle.c), as plain SQL
-- on batch_jobs, which bench/run runs with its triggers disabled (row 4g:
-- what the statements' shape costs against claim_plain.sql).
UPDATE batch_jobs SET status = 'PROCESSING', locked_by = 'worker-' || :client_id::text,
       locked_until = clock_timestamp() + interval '5 minutes', attempts = attempts + 1
 WHERE job_id = ANY (ARRAY(
        SELECT job_id FROM batch_jobs WHERE status = 'PENDING' AND NOT is_parent
           AND run_at <= clock_timestamp()
           AND (NULL::text[] IS NULL OR created_by = ANY (NULL::text[]))
         ORDER BY priority DESC, created_at, job_id LIMIT 1
           FOR UPDATE SKIP LOCKED))
   AND status = 'PENDING' RETURNING job_id \gset
UPDATE batch_jobs SET status = 'COMPLETED'
 WHERE job_id = :job_id AND status = (SELECT 'PROCESSING'::text) AND NOT is_parent
 RETURNING job_id \gset
