-- bench/claim_batch_two.sql - batch mode in two calls: claim 100 jobs,
-- then complete them all with one call (one rollup per parent per
-- statement).  For the PL/Proxy benchmark (11): the proxy has no
-- batchjob_complete_and_claim, so both sides of that ratio use this.
SELECT array_agg(job_id) AS ids FROM batchjob_claim('worker-' || :client_id::text, 100) \gset
SELECT batchjob_complete(:ids::bigint[]) AS done \gset
