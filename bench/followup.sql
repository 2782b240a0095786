-- bench/followup.sql - follow-up activation (bench/run, 9): a cycle of two
-- claims, each completed at once.  With follow-ups, the first claim takes
-- a parent's last child, whose completion finishes the parent and starts
-- its follow-up in the same transaction; the second claim, right after
-- that commit, takes the follow-up (next in the claim order).  An empty
-- queue makes \gset fail, so the run aborts rather than count empty claims.
SELECT job_id AS c FROM batchjob_claim('worker-' || :client_id::text) \gset
SELECT 1 AS done FROM batchjob_complete(:c::bigint) \gset
SELECT job_id AS f FROM batchjob_claim('worker-' || :client_id::text) \gset
SELECT 1 AS done FROM batchjob_complete(:f::bigint) \gset
