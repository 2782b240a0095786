-- test/t/stress/worker.sql - one pgbench transaction of a stress worker;
-- 014_stress.pl replaces @WORKER@ with the worker name's prefix.
--
-- Claim one job and record the claim in the same statement, so that no
-- claim goes unrecorded; \gset needs exactly one row, hence max().  Then,
-- in a transaction of its own, finish it (stress_finish in setup.sql).
-- With nothing claimable (the rest is held or backing off), pause.  About
-- one round in 40 first takes back expired leases.
\set r random(1, 40)
\if :r = 1
INSERT INTO stress_reaps (reaped) SELECT batchjob_reap();
\endif
WITH c AS (
    SELECT job_id, attempts, locked_until
    FROM batchjob_claim('@WORKER@' || :client_id, 1, '30 seconds')
), a AS (
    INSERT INTO stress_claims (job_id, attempt, worker, lease_until)
    SELECT job_id, attempts, '@WORKER@' || :client_id, locked_until FROM c
    RETURNING job_id, attempt
)
SELECT coalesce(max(job_id), 0) AS job_id, coalesce(max(attempt), 0) AS attempt
FROM a \gset
\if :job_id > 0
SELECT stress_finish(:job_id, :attempt, '@WORKER@' || :client_id);
\else
\sleep 20 ms
\endif
