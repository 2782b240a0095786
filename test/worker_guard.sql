-- test/worker_guard.sql: a worker finishes only jobs it still holds, every
-- PROCESSING job has a lease, and the progress view matches a fold.
BEGIN;
SELECT plan(19);
\ir pgtap/fixture.sql

INSERT INTO ids SELECT 'P', job_id FROM batchjob_create_parent('{}', 'wg');
INSERT INTO ids SELECT 'C' || batch_number, job_id
  FROM batchjob_split((SELECT id FROM ids WHERE name = 'P'), 30, 10);

-- worker A claims C1; its lease runs out; the reaper takes it back; B claims it
SELECT is((SELECT job_id FROM batchjob_claim('A')), pg_temp.jid('C1'),
    'A claims the first child');
UPDATE batch_jobs SET locked_until = clock_timestamp() - interval '1 minute'
 WHERE job_id = pg_temp.jid('C1');
SELECT is(batchjob_reap(), 1::bigint, 'the expired lease is reaped');
SELECT is((SELECT job_id FROM batchjob_claim('B')), pg_temp.jid('C1'),
    'B claims the same child, attempt 2');

SELECT throws_ok(format('SELECT batchjob_complete(%s, %L)', pg_temp.jid('C1'), 'A'),
    '55000', format('job %s is not held by worker "A"', pg_temp.jid('C1')),
    'A cannot complete the job B holds now');
SELECT throws_ok(format('SELECT batchjob_progress(%s, 5, 5, 0, %L)', pg_temp.jid('C1'), 'A'),
    '55000', NULL, 'nor report progress on it');
SELECT throws_ok(format('SELECT batchjob_fail(%s, %L, true, %L)', pg_temp.jid('C1'), 'x', 'A'),
    '55000', NULL, 'nor fail it');
SELECT is((SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid('C1')), 'PROCESSING',
    'the refused calls changed nothing');
SELECT throws_ok(format('SELECT batchjob_progress(%s, 10, 8, 3, %L)', pg_temp.jid('C1'), 'B'),
    '22023', 'succeeded plus failed (8 + 3) exceeds processed (10)',
    'a report whose outcomes exceed what was processed is refused');
SELECT is((batchjob_progress(pg_temp.jid('C1'), 10, 10, 0, 'B')).processed_records, 10::bigint,
    'B reports progress as the holder');
SELECT is((batchjob_complete(pg_temp.jid('C1'), 'B')).status, 'COMPLETED',
    'B completes it');

-- without the worker argument, any caller may finish a PROCESSING job
SELECT is((SELECT job_id FROM batchjob_claim('A')), pg_temp.jid('C2'), 'A claims C2');
SELECT is((batchjob_complete(pg_temp.jid('C2'))).status, 'COMPLETED',
    'batchjob_complete(job_id) alone does not check the holder');

-- plain SQL that moves a job to PROCESSING gives it the default lease
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('C3');
SELECT is((SELECT locked_until - now() FROM batch_jobs WHERE job_id = pg_temp.jid('C3')),
    interval '5 minutes', 'a job made PROCESSING by plain SQL gets a 5-minute lease');
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = pg_temp.jid('C3');
SELECT is((SELECT locked_until FROM batch_jobs WHERE job_id = pg_temp.jid('C3')), NULL,
    'the lease is cleared when the job leaves PROCESSING');

-- a parent with its own total whose first child waits in batch_job_deltas:
-- the view replaces the parent's own figures, as the fold will
INSERT INTO ids SELECT 'Q', job_id FROM batchjob_create_parent('{}', 'wg', 0, 50);
INSERT INTO batch_job_deltas VALUES (pg_temp.jid('Q'), 1, 0, 0, 0, 0, 10, 4, 4, 0);
SELECT is((SELECT (total_records, processed_records, pending, children)::text
             FROM batch_job_progress WHERE job_id = pg_temp.jid('Q')),
    '(10,4,1,1)', 'the view counts a first deferred child as the fold will');
SELECT is(batchjob_fold(pg_temp.jid('Q')), 1::bigint, 'batchjob_fold folds the parent');
SELECT is((SELECT (total_records, processed_records, child_pending)::text
             FROM batch_jobs WHERE job_id = pg_temp.jid('Q')),
    '(10,4,1)', 'the fold stores the same figures');

-- TRUNCATE drops the differences waiting for the parents it removes, so a
-- parent that reuses an id does not inherit them
INSERT INTO batch_job_deltas VALUES (pg_temp.jid('P'), 0, 0, 1, 0, 0, 0, 5, 5, 0);
TRUNCATE batch_jobs;
SELECT is((SELECT count(*) FROM batch_job_deltas), 0::bigint,
    'TRUNCATE batch_jobs empties batch_job_deltas');
SELECT is((SELECT count(*) FROM batch_jobs), 0::bigint, 'and the jobs are gone');

SELECT * FROM finish();
ROLLBACK;
