-- bench/claim_batch.sql - batch mode: one call per batch,
-- batchjob_complete_and_claim, completes the 100 jobs the last call
-- claimed and claims the next 100 (one round trip, one commit).  The
-- first call completes nothing (-D ids={}); the last (-D txns=N, run
-- with -t N+1) only completes, so that each client completes exactly
-- N x 100 jobs and leaves none PROCESSING.
\if :n < :txns
SELECT array_agg(job_id) AS ids
  FROM batchjob_complete_and_claim(:ids::bigint[], 'worker-' || :client_id::text, 100) \gset
\else
SELECT batchjob_complete(:ids::bigint[], 'worker-' || :client_id::text) AS done \gset
\endif
\set n :n + 1
