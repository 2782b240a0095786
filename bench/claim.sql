-- bench/claim.sql - a worker's cycle through the batchjob API: claim one
-- job (its own transaction), then complete it.  An empty queue makes
-- \gset fail, so the run aborts rather than count empty claims.
SELECT job_id FROM batchjob_claim('worker-' || :client_id::text) \gset
SELECT 1 AS done FROM batchjob_complete(:job_id::bigint) \gset
