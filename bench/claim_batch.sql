-- bench/claim_batch.sql - batch mode: claim 100 jobs in one call, then
-- complete them all with one call (one rollup per parent per statement).
SELECT array_agg(job_id) AS ids FROM batchjob_claim('worker-' || :client_id::text, 100) \gset
SELECT batchjob_complete(:ids::bigint[]) AS done \gset
