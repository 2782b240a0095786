-- bench/complete.sql - one child completed per transaction, by job_id.
-- Client c completes first + c * slice + 0, 1, 2, ... in turn (pgbench
-- variables outlive a transaction); -D n=0 starts the count.  RETURNING
-- with \gset makes a child that is not there an error, so a client that
-- ran out of children aborts the run instead of timing no-ops.
\set id :first + :client_id * :slice + :n
UPDATE batch_jobs SET status = 'COMPLETED'
 WHERE job_id = :id AND status = 'PROCESSING' RETURNING job_id \gset
\set n :n + 1
