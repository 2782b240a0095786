/*
 * test/timestamps.sql - pgTAP: the guard stamps updated_at on every update,
 * started_at when a job first leaves PENDING, and completed_at when it
 * finishes (clearing it when the job is reopened).  now() is constant in a
 * transaction, so the tests start from rows with old timestamps and look
 * for the transaction's time.
 */
BEGIN;
SELECT plan(17);
\ir pgtap/fixture.sql

-- A standalone job named $1 in status $2, every timestamp in year 2000
-- except the ones its status must not have.
CREATE PROCEDURE pg_temp.job(text, text) LANGUAGE sql
    AS $$ WITH j AS (
              INSERT INTO batch_jobs (status, created_by, created_at,
                                      updated_at, started_at, completed_at)
              VALUES ($2, 'timestamps', '2000-01-01', '2000-01-01',
                      CASE WHEN $2 <> 'PENDING' THEN timestamptz '2000-01-02' END,
                      CASE WHEN $2 IN ('COMPLETED', 'FAILED', 'CANCELLED')
                           THEN timestamptz '2000-01-03' END)
              RETURNING job_id)
          INSERT INTO ids SELECT $1, job_id FROM j $$;
CREATE FUNCTION pg_temp.stamps(text) RETURNS TABLE
    (updated_at timestamptz, started_at timestamptz, completed_at timestamptz)
    LANGUAGE sql
    AS $$ SELECT updated_at, started_at, completed_at
          FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;

/* ---- updated_at ---- */

CALL pg_temp.job('u', 'PENDING');
UPDATE batch_jobs SET priority = 1 WHERE job_id = pg_temp.jid('u');
SELECT is((SELECT updated_at FROM pg_temp.stamps('u')), now(),
    'updated_at: any update stamps the transaction''s time');
UPDATE batch_jobs SET updated_at = '1999-01-01' WHERE job_id = pg_temp.jid('u');
SELECT is((SELECT updated_at FROM pg_temp.stamps('u')), now(),
    'updated_at: an explicit value in an update is replaced by the transaction''s time');

/* ---- started_at ---- */

CALL pg_temp.job('s', 'PENDING');
SELECT is((SELECT started_at FROM pg_temp.stamps('s')), NULL,
    'started_at: NULL while the job is PENDING');
UPDATE batch_jobs SET criteria = '{"x": 1}' WHERE job_id = pg_temp.jid('s');
SELECT is((SELECT started_at FROM pg_temp.stamps('s')), NULL,
    'started_at: still NULL after an update that keeps the job PENDING');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('s');
SELECT is((SELECT started_at FROM pg_temp.stamps('s')), now(),
    'started_at: set when the job leaves PENDING');

CALL pg_temp.job('s2', 'PROCESSING');
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = pg_temp.jid('s2');
SELECT results_eq($$SELECT started_at, completed_at FROM pg_temp.stamps('s2')$$,
    $$VALUES (timestamptz '2000-01-02', now())$$,
    'started_at: kept when a started job finishes; completed_at set then');

CALL pg_temp.job('s3', 'PENDING');
UPDATE batch_jobs SET status = 'FAILED' WHERE job_id = pg_temp.jid('s3');
SELECT results_eq($$SELECT started_at, completed_at FROM pg_temp.stamps('s3')$$,
    $$VALUES (now(), now())$$,
    'a PENDING job failing at once gets both started_at and completed_at');

/* ---- completed_at ---- */

CALL pg_temp.job('c', 'PROCESSING');
UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = pg_temp.jid('c');
SELECT is((SELECT completed_at FROM pg_temp.stamps('c')), now(),
    'completed_at: set when the job is CANCELLED');

CALL pg_temp.job('f', 'FAILED');
UPDATE batch_jobs SET status = 'PENDING' WHERE job_id = pg_temp.jid('f');
SELECT results_eq($$SELECT started_at, completed_at FROM pg_temp.stamps('f')$$,
    $$VALUES (timestamptz '2000-01-02', NULL::timestamptz)$$,
    'completed_at: cleared when a FAILED job goes back to PENDING; started_at kept');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('f');
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = pg_temp.jid('f');
SELECT is((SELECT completed_at FROM pg_temp.stamps('f')), now(),
    'completed_at: set again when the retried job finishes');

/* ---- inserted rows ---- */

WITH j AS (INSERT INTO batch_jobs (status, created_by, completed_at)
           VALUES ('PENDING', 'timestamps', '2000-01-01') RETURNING job_id)
    INSERT INTO ids SELECT 'i-pending', job_id FROM j;
SELECT is((SELECT completed_at FROM pg_temp.stamps('i-pending')), NULL,
    'insert: a PENDING job cannot carry a completed_at');
WITH j AS (INSERT INTO batch_jobs (status, created_by)
           VALUES ('COMPLETED', 'timestamps') RETURNING job_id)
    INSERT INTO ids SELECT 'i-completed', job_id FROM j;
SELECT results_eq(
    $$SELECT started_at, completed_at FROM pg_temp.stamps('i-completed')$$,
    $$VALUES (now(), now())$$,
    'insert: a job inserted COMPLETED gets started_at and completed_at');
WITH j AS (INSERT INTO batch_jobs (status, created_by)
           VALUES ('PROCESSING', 'timestamps') RETURNING job_id)
    INSERT INTO ids SELECT 'i-processing', job_id FROM j;
SELECT results_eq(
    $$SELECT started_at, completed_at FROM pg_temp.stamps('i-processing')$$,
    $$VALUES (now(), NULL::timestamptz)$$,
    'insert: a job inserted PROCESSING gets started_at only');

/* ---- parents: stamped when the rollup writes them ---- */

INSERT INTO ids SELECT 'p', job_id FROM batchjob_create_parent('{}', 'timestamps');
UPDATE batch_jobs SET updated_at = '2000-01-01' WHERE job_id = pg_temp.jid('p');
DO $$BEGIN PERFORM batchjob_create_child(pg_temp.jid('p'), 1, 0, 5); END$$;
SELECT is((SELECT updated_at FROM pg_temp.stamps('p')), now(),
    'parent: a new child stamps the parent''s updated_at');
SELECT is((SELECT started_at FROM pg_temp.stamps('p')), NULL,
    'parent: not started while all its children are PENDING');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE parent_job_id = pg_temp.jid('p');
SELECT results_eq($$SELECT started_at, completed_at FROM pg_temp.stamps('p')$$,
    $$VALUES (now(), NULL::timestamptz)$$,
    'parent: started_at set when a child starts');
UPDATE batch_jobs SET status = 'COMPLETED' WHERE parent_job_id = pg_temp.jid('p');
SELECT is((SELECT completed_at FROM pg_temp.stamps('p')), now(),
    'parent: completed_at set when its last child finishes');

SELECT * FROM finish();
ROLLBACK;
