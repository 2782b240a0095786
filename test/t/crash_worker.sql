-- test/t/crash_worker.sql - one pgbench round of a crash-test worker.
-- The test replaces @PREFIX@ with the worker name's prefix ("load",
-- "drain") and sets work_ms (pgbench -D) to the time a batch takes.
--
-- Claim one job under a 2-second lease and record the claim in the same
-- statement; \gset needs exactly one row, hence max().  The worker is named
-- after its backend, so that the test knows which jobs a killed backend
-- held.  Then, in a transaction of its own, finish the job (crash_finish in
-- crash_setup.sql).  With nothing claimable, pause.  Workers never reap:
-- the test does, so that it knows what every reap takes back.
WITH c AS (
    SELECT job_id, attempts
    FROM batchjob_claim('@PREFIX@-' || pg_backend_pid(), 1, '2 seconds')
), a AS (
    INSERT INTO crash_claims (job_id, attempt, worker)
    SELECT job_id, attempts, '@PREFIX@-' || pg_backend_pid() FROM c
    RETURNING job_id, attempt
)
SELECT coalesce(max(job_id), 0) AS job_id, coalesce(max(attempt), 0) AS attempt
FROM a \gset
\if :job_id > 0
\sleep :work_ms ms
SELECT crash_finish(:job_id, :attempt, '@PREFIX@-' || pg_backend_pid());
\else
\sleep 20 ms
\endif
