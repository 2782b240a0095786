--
-- admin: what an operator does (1.1 and 1.2): hand out access with
-- batchjob_grant and take it back with batchjob_revoke, tenants and
-- priority ceilings, the bounds on one call, watching progress through
-- the batch_job_progress view, checking and repairing with batchjob_verify,
-- batchjob_fold and batchjob_refresh_parent, and retention with
-- batchjob_purge.
--
-- Every suite starts from an empty table numbering jobs from 1, so its
-- output is the same whichever suites ran before it.  Roles are
-- cluster-wide: the ones made here are named regress_bj_* and dropped at
-- the end.
--
-- Errors show their message, DETAIL and HINT, not where in a function
-- they were raised.
\set SHOW_CONTEXT never
TRUNCATE batch_jobs, batch_jobs_archive RESTART IDENTITY;

--
-- batchjob_grant(role, level, tenants, max_priority)
--

-- a pool of workers, a submitting application and an operator
CREATE ROLE regress_bj_worker;
CREATE ROLE regress_bj_importer;
CREATE ROLE regress_bj_ops;
SELECT batchjob_grant('regress_bj_worker', 'worker');
SELECT batchjob_grant('regress_bj_importer', 'submitter', max_priority => 10);
SELECT batchjob_grant('regress_bj_ops', 'admin');

-- what each level may call: a worker works jobs, a submitter makes and
-- steers them, an admin does everything
SELECT f AS function,
       has_function_privilege('regress_bj_worker', f, 'EXECUTE') AS worker,
       has_function_privilege('regress_bj_importer', f, 'EXECUTE') AS submitter,
       has_function_privilege('regress_bj_ops', f, 'EXECUTE') AS admin
  FROM unnest(ARRAY[
         'batchjob_claim(text, integer, interval)',
         'batchjob_complete(bigint, text, integer)',
         'batchjob_create_parent(jsonb, text, integer, bigint, text, bigint)',
         'batchjob_split(bigint, bigint, integer)',
         'batchjob_cancel(bigint)',
         'batchjob_reap()',
         'batchjob_verify()',
         'batchjob_purge(interval, integer, boolean)']) AS f;

-- every level reads the jobs and the progress view; only an admin writes
-- the table with plain SQL
SELECT r AS role,
       has_table_privilege(r, 'batch_jobs', 'SELECT') AS read_jobs,
       has_table_privilege(r, 'batch_job_progress', 'SELECT') AS read_progress,
       has_table_privilege(r, 'batch_jobs', 'UPDATE') AS update_jobs
  FROM unnest(ARRAY['regress_bj_worker', 'regress_bj_importer',
                    'regress_bj_ops']) AS r;

-- the submitter's priority ceiling is kept in batch_job_submitters
SELECT submitter, max_priority FROM batch_job_submitters ORDER BY 1;

-- a second pool that serves only the importer's jobs under tenant
-- isolation; the list is kept in batch_job_workers (NULL: every tenant)
CREATE ROLE regress_bj_worker_b;
SELECT batchjob_grant('regress_bj_worker_b', 'worker',
                      ARRAY['regress_bj_importer']);
SELECT worker, tenants FROM batch_job_workers ORDER BY 1;

-- refused (22023): an unknown level, and a tenant list for a submitter
SELECT batchjob_grant('regress_bj_ops', 'owner');
SELECT batchjob_grant('regress_bj_importer', 'submitter', ARRAY['alice']);
-- refused (22004): a NULL tenant names nobody
SELECT batchjob_grant('regress_bj_worker_b', 'worker', ARRAY[NULL]::text[]);

--
-- Working as those roles
--

-- the importer submits a parent of 30 records in batches of 10
SET ROLE regress_bj_importer;
SELECT job_id, status, created_by, priority
  FROM batchjob_create_parent('{"file": "leads.csv"}', 'regress_bj_importer',
                              priority => 10);
SELECT count(*) AS batches FROM batchjob_split(1, 30, 10);

-- priority 10 was within its ceiling; 11 is above it and refused (22023)
SELECT batchjob_create_parent('{"file": "urgent.csv"}', 'regress_bj_importer',
                              priority => 11);
RESET ROLE;

-- a worker must name itself when it finishes a job (55000): so a worker
-- whose lease ran out cannot finish a job claimed again by someone else
SET ROLE regress_bj_worker;
SELECT job_id, attempts FROM batchjob_claim('pool-1');
SELECT batchjob_complete(2);
SELECT job_id, status FROM batchjob_complete(2, 'pool-1', 1);
-- and it may not cancel jobs (42501)
SELECT batchjob_cancel(1);
RESET ROLE;

--
-- Tenant isolation (batchjob.tenant_isolation, superuser only)
--

-- a job of another tenant, made by the operator
SELECT job_id, created_by
  FROM batchjob_create_parent('{"file": "ledger.csv"}', 'alice');

SET batchjob.tenant_isolation = on;

-- the importer sees only its own jobs
SET ROLE regress_bj_importer;
SELECT job_id, created_by FROM batch_jobs ORDER BY job_id;
-- alice's job does not exist for it (P0002), and it may create jobs only
-- as itself (42501)
SELECT batchjob_cancel(5);
SELECT batchjob_create_parent('{}', 'alice');
RESET ROLE;

-- worker pool b serves only the importer's jobs; the operator sees all
SET ROLE regress_bj_worker_b;
SELECT DISTINCT created_by FROM batch_jobs;
SET ROLE regress_bj_ops;
SELECT DISTINCT created_by FROM batch_jobs ORDER BY 1;
RESET ROLE;

RESET batchjob.tenant_isolation;

--
-- Bounds (1.2): each refused with 22023, changing nothing
--

-- a claim takes at most 1000 jobs
SELECT batchjob_claim('pool-1', max_jobs => 1001);
-- a split makes at most 100,000 batches
SELECT batchjob_split(5, 100001, 1);
-- a job counts at most 2^48 records
SELECT batchjob_create_parent('{}', 'alice', total_records => 281474976710657);
-- nothing was made
SELECT count(*) AS jobs FROM batch_jobs;

--
-- View batch_job_progress
--

-- one row per parent.  Child 2 is COMPLETED; worker pool-1 reports 4 of
-- 10 records on child 3
SELECT job_id FROM batchjob_claim('pool-1');
SELECT processed_records FROM batchjob_progress(3, 4, 4, 0, 'pool-1');

-- the rate and the estimated finish depend on the clock: as superuser, in
-- one transaction (so now() stands still), we say the parent started 10
-- seconds ago.  4 records in 10 seconds is 0.4 a second, so the 26 left
-- take 65 seconds more.  Alice's parent has no children and no figures
BEGIN;
UPDATE batch_jobs SET started_at = now() - interval '10 seconds'
 WHERE job_id = 1;
SELECT job_id, status, pending, processing, completed, failed, cancelled,
       children, processed_records, total_records, percent_done,
       records_per_second, estimated_finish - now() AS finish_in
  FROM batch_job_progress ORDER BY job_id;
COMMIT;

--
-- batchjob_fold(parent_job_id) and the differences waiting for a parent
--

-- A rollup that finds its parent busy leaves its difference in
-- batch_job_deltas for the folder.  Here we write one by hand, inside a
-- transaction so that no folder folds it before we look: one more child
-- of parent 1 completed, with 10 records
BEGIN;
INSERT INTO batch_job_deltas (parent_job_id, child_pending, child_processing,
    child_completed, child_failed, child_cancelled, total_records,
    processed_records, success_count, error_count)
VALUES (1, 0, 0, 1, 0, 0, 0, 10, 10, 0);

-- the stored row does not have it yet; batchjob_child_counts and the
-- progress view add it, so they are exact
SELECT child_completed, processed_records FROM batch_jobs WHERE job_id = 1;
SELECT pending, processing, completed, total FROM batchjob_child_counts(1);
SELECT completed, processed_records FROM batch_job_progress WHERE job_id = 1;

-- batchjob_fold(1) folds it into the stored row; nothing waits any more
SELECT batchjob_fold(1) AS folded;
SELECT child_completed, processed_records FROM batch_jobs WHERE job_id = 1;
SELECT count(*) AS waiting FROM batch_job_deltas;

-- batchjob_fold() without a parent folds every parent that has waiting
-- differences: none now
SELECT batchjob_fold() AS parents_folded;
ROLLBACK;

--
-- batchjob_verify() and batchjob_refresh_parent(parent_job_id)
--

-- all is well: no rows
SELECT * FROM batchjob_verify();

-- a hand edit with the triggers off (as a botched restore might leave
-- it) breaks the parent's figures; verify names the parent
SET session_replication_role = replica;
UPDATE batch_jobs SET processed_records = 99, child_completed = 0
 WHERE job_id = 1;
SET session_replication_role = DEFAULT;
SELECT * FROM batchjob_verify();

-- batchjob_refresh_parent recomputes the parent from its children
SELECT job_id, status, processed_records, child_pending, child_processing,
       child_completed
  FROM batchjob_refresh_parent(1);
SELECT * FROM batchjob_verify();

--
-- batchjob_purge(older_than, max_rows, archive) (1.2)
--

-- the importer's parent finishes: child 3 completes and child 4 is
-- cancelled
SELECT status FROM batchjob_complete(3, 'pool-1');
SELECT batchjob_cancel(4) AS cancelled;
SELECT job_id, status FROM batch_jobs ORDER BY job_id;

-- purge takes finished trees whose top job finished before now() minus
-- older_than: none finished a day ago
SELECT batchjob_purge('1 day') AS purged;

-- as superuser we date the tree's finish two days back; a tree goes
-- whole or not at all, so with max_rows 3 it stays (it has 4 rows)
UPDATE batch_jobs SET completed_at = now() - interval '2 days' WHERE job_id = 1;
SELECT batchjob_purge('1 day', max_rows => 3) AS purged;
-- with room for it, it goes, copied to batch_jobs_archive first; alice's
-- unfinished job stays
SELECT batchjob_purge('1 day', archive => true) AS purged;
SELECT job_id, status FROM batch_jobs ORDER BY job_id;
SELECT job_id, parent_job_id, status FROM batch_jobs_archive ORDER BY job_id;

--
-- batchjob_revoke(role)
--

-- takes back every level, the tenants and the ceiling
SELECT batchjob_revoke(r::regrole)
  FROM unnest(ARRAY['regress_bj_worker', 'regress_bj_worker_b',
                    'regress_bj_importer', 'regress_bj_ops']) AS r;
SELECT has_function_privilege('regress_bj_worker',
           'batchjob_claim(text, integer, interval)', 'EXECUTE') AS can_claim,
       has_table_privilege('regress_bj_importer', 'batch_jobs', 'SELECT') AS can_read;
SELECT count(*) AS workers FROM batch_job_workers;
SELECT count(*) AS submitters FROM batch_job_submitters;

DROP ROLE regress_bj_worker, regress_bj_worker_b, regress_bj_importer,
          regress_bj_ops;
TRUNCATE batch_jobs_archive;
