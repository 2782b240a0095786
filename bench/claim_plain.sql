-- bench/claim_plain.sql - the hand-written baseline on bench_plain (a copy
-- of batch_jobs with the same indexes and no triggers): the same claim
-- query and lease columns as batchjob_claim, FOR UPDATE SKIP LOCKED, one
-- job, then an UPDATE that completes it.
UPDATE bench_plain
   SET status = 'PROCESSING', locked_by = 'worker-' || :client_id::text,
       locked_until = clock_timestamp() + interval '5 minutes',
       attempts = attempts + 1, started_at = coalesce(started_at, now()),
       updated_at = now()
 WHERE job_id = (SELECT job_id FROM bench_plain
                  WHERE status = 'PENDING' AND NOT is_parent
                    AND run_at <= clock_timestamp()
                  ORDER BY priority DESC, created_at, job_id
                  LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING job_id \gset
UPDATE bench_plain
   SET status = 'COMPLETED', completed_at = now(), locked_by = NULL,
       locked_until = NULL, updated_at = now()
 WHERE job_id = :job_id AND status = 'PROCESSING' RETURNING job_id \gset
