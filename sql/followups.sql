--
-- followups: what happens after a job finishes (1.2).  A follow-up job
-- waits for other jobs and starts when they finish; batchjob_purge keeps
-- the table small by deleting finished job trees.
--
-- Jobs are named through psql variables set with \gset.  Every suite starts
-- from an empty table numbering jobs from 1, so its output is the same
-- whichever suites ran before it.
--
TRUNCATE batch_jobs RESTART IDENTITY;
TRUNCATE batch_jobs_archive;

--
-- batchjob_create_followup(after_job_ids, criteria, created_by, after,
--                          priority, total_records)
--

-- an import split into two batches, and a report that should run once the
-- import has succeeded
SELECT job_id AS import FROM batchjob_create_parent('{"file": "leads.csv"}', 'alice') \gset
SELECT count(*) FROM batchjob_split(:import, 2000, 1000);
SELECT job_id AS report
  FROM batchjob_create_followup(ARRAY[:import], '{"report": "leads"}', 'alice') \gset

-- the report waits: PENDING, but parked (run_at infinity), a plain job with
-- no parent; the import knows it has a follower
SELECT job_id, status, is_parent, parent_job_id, run_at = 'infinity' AS parked,
       has_followers
  FROM batch_jobs WHERE job_id IN (:import, :report) ORDER BY job_id;
-- what it waits for, and how
SELECT job_id, after_job_id, after, done_at FROM batch_job_followups;

-- workers claim the two batches, never the report
SELECT job_id FROM batchjob_claim('worker-1', 10) ORDER BY job_id;
SELECT job_id, status FROM batchjob_complete(2, 'worker-1');
SELECT status, run_at FROM batch_jobs WHERE job_id = :report;

-- the last batch completes: the import is COMPLETED, and in the same
-- transaction the report becomes claimable
SELECT job_id, status FROM batchjob_complete(3, 'worker-1');
SELECT job_id, status, run_at <= now() AS claimable
  FROM batch_jobs WHERE job_id IN (:import, :report) ORDER BY job_id;
SELECT job_id, after_job_id, done_at IS NOT NULL AS done FROM batch_job_followups;
SELECT job_id FROM batchjob_claim('worker-1');
SELECT job_id, status FROM batchjob_complete(:report, 'worker-1');

--
-- after => 'success' and 'complete'
--

-- a cleanup that runs however the import ends, and a publish step that
-- runs only if it succeeds
SELECT job_id AS import2 FROM batchjob_create_parent('{"file": "leads2.csv"}', 'alice') \gset
SELECT count(*) FROM batchjob_split(:import2, 2000, 1000);
SELECT job_id AS publish
  FROM batchjob_create_followup(ARRAY[:import2], '{"publish": true}', 'alice') \gset
SELECT job_id AS cleanup
  FROM batchjob_create_followup(ARRAY[:import2], '{"cleanup": true}', 'alice',
                                after => 'complete') \gset
SELECT job_id FROM batchjob_claim('worker-1', 10) ORDER BY job_id;
SELECT job_id, status FROM batchjob_complete(6, 'worker-1');
SELECT job_id, status, error_details
  FROM batchjob_fail(7, 'malformed row', retry => false, worker => 'worker-1');

-- the import ended COMPLETED with a failed batch: the publish step is
-- CANCELLED and says why, the cleanup starts
SELECT job_id, status, run_at <= now() AS claimable, error_details
  FROM batch_jobs WHERE job_id IN (:import2, :publish, :cleanup) ORDER BY job_id;

--
-- chains and fan-in
--

-- extract, then transform, then load; and an audit that waits for both
-- the load and the cleanup above
INSERT INTO batch_jobs (status, criteria, created_by)
VALUES ('PENDING', '{"step": "extract"}', 'alice') RETURNING job_id AS extract \gset
SELECT job_id AS transform
  FROM batchjob_create_followup(ARRAY[:extract], '{"step": "transform"}', 'alice') \gset
SELECT job_id AS load
  FROM batchjob_create_followup(ARRAY[:transform], '{"step": "load"}', 'alice') \gset
SELECT job_id AS audit
  FROM batchjob_create_followup(ARRAY[:load, :cleanup], '{"step": "audit"}', 'alice') \gset

-- each step starts when the one before it completes
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = :cleanup;
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = :extract;
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id IN (:extract, :cleanup);
SELECT job_id, criteria->>'step' AS step, status, run_at = 'infinity' AS waiting
  FROM batch_jobs WHERE job_id IN (:extract, :transform, :load, :audit) ORDER BY job_id;
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = :transform;
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = :transform;
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = :load;
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = :load;
-- the audit waited for the load and the cleanup: both done, it starts
SELECT job_id, criteria->>'step' AS step, status, run_at = 'infinity' AS waiting
  FROM batch_jobs WHERE job_id IN (:extract, :transform, :load, :audit) ORDER BY job_id;

-- a follow-up of a job that has already finished starts (or is cancelled)
-- at once
SELECT job_id, status, run_at = 'infinity' AS waiting, error_details
  FROM batchjob_create_followup(ARRAY[:import2], '{"late": true}', 'alice');

--
-- a follow-up parent: batchjob_create_followup(..., is_parent => true)
--

-- a third import that waits for the audit: a parent, split while it
-- waits; its batches are held back (run_at infinity) with it
SELECT job_id AS import3
  FROM batchjob_create_followup(ARRAY[:audit], '{"file": "leads3.csv"}', 'alice',
                                is_parent => true) \gset
SELECT count(*) FROM batchjob_split(:import3, 2000, 1000);
SELECT job_id, status, is_parent, parent_job_id, run_at = 'infinity' AS held
  FROM batch_jobs WHERE :import3 IN (job_id, parent_job_id) ORDER BY job_id;
-- a publish step for it, a parent too, split while it waits
SELECT job_id AS publish3
  FROM batchjob_create_followup(ARRAY[:import3], '{"publish": "leads3"}', 'alice',
                                is_parent => true) \gset
SELECT count(*) FROM batchjob_split(:publish3, 2, 1);

-- workers claim the audit, and nothing held back
SELECT job_id FROM batchjob_claim('worker-1', 10) ORDER BY job_id;
-- the audit completes: in the same transaction the import starts, and
-- its batches are claimable
SELECT job_id, status FROM batchjob_complete(:audit, 'worker-1');
SELECT job_id, status, run_at = 'infinity' AS held
  FROM batch_jobs WHERE :import3 IN (job_id, parent_job_id) ORDER BY job_id;
SELECT min(job_id) AS batch3a, max(job_id) AS batch3b
  FROM batchjob_claim('worker-1', 10) \gset
SELECT :batch3a, :batch3b;

-- a batch of the import fails: the publish step is cancelled, and its
-- batches with it, each saying why
SELECT job_id, status FROM batchjob_complete(:batch3a, 'worker-1');
SELECT job_id, status, error_details
  FROM batchjob_fail(:batch3b, 'malformed row', retry => false, worker => 'worker-1');
SELECT job_id, status, run_at = 'infinity' AS held, error_details
  FROM batch_jobs WHERE :publish3 IN (job_id, parent_job_id) ORDER BY job_id;

-- nothing is left waiting behind a finished job
SELECT * FROM batchjob_verify();

--
-- batchjob_purge(older_than, max_rows, archive)
--

-- every tree above finished just now: nothing is older than an hour
SELECT batchjob_purge('1 hour');
-- pretend the first import and its report finished yesterday
UPDATE batch_jobs SET completed_at = now() - interval '1 day'
 WHERE job_id IN (:import, :report);
-- the import's tree (the parent and its two batches) and the report,
-- copied to batch_jobs_archive first
SELECT batchjob_purge('1 hour', max_rows => 1000, archive => true);
SELECT job_id, status, parent_job_id FROM batch_jobs_archive ORDER BY job_id;
SELECT count(*) FROM batch_jobs WHERE job_id IN (:import, :report);
SELECT * FROM batchjob_verify();
