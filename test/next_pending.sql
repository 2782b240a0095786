/*
 * test/next_pending.sql - pgTAP: batchjob_next_pending() picks the PENDING
 * non-parent job with the highest priority, then the oldest, and claims
 * nothing.  It reads the whole table, so this file empties the table first
 * (inside its transaction, which is rolled back).
 */
BEGIN;
SELECT plan(11);
\ir pgtap/fixture.sql

-- A standalone job named $1 with a priority, a status and an age.
CREATE PROCEDURE pg_temp.job(text, integer, text, interval)
    LANGUAGE sql
    AS $$ WITH j AS (
              INSERT INTO batch_jobs (priority, status, created_at, created_by)
              VALUES ($2, $3, now() - $4, 'next_pending')
              RETURNING job_id)
          INSERT INTO ids SELECT $1, job_id FROM j $$;
-- The name of the job batchjob_next_pending() returns.
CREATE FUNCTION pg_temp.next() RETURNS text LANGUAGE sql
    AS $$ SELECT coalesce((SELECT name FROM ids WHERE id = n.job_id), 'unnamed job')
          FROM batchjob_next_pending() n WHERE n.job_id IS NOT NULL $$;

SELECT is((SELECT job_id FROM batchjob_next_pending()), NULL,
    'next_pending: NULL when there are no jobs');

-- finished, running and parent jobs of high priority, none of them eligible
INSERT INTO ids SELECT 'parent', job_id
    FROM batchjob_create_parent('{}', 'next_pending', 100);
CALL pg_temp.job('processing', 100, 'PROCESSING', '1 day');
CALL pg_temp.job('completed', 100, 'COMPLETED', '1 day');
CALL pg_temp.job('failed', 100, 'FAILED', '1 day');
CALL pg_temp.job('cancelled', 100, 'CANCELLED', '1 day');
SELECT is((SELECT job_id FROM batchjob_next_pending()), NULL,
    'next_pending: NULL when only a PENDING parent and non-PENDING jobs exist');

CALL pg_temp.job('low', -10, 'PENDING', '2 days');
SELECT is(pg_temp.next(), 'low',
    'next_pending: a negative priority job is taken when it is the only PENDING one');

CALL pg_temp.job('mid-new', 5, 'PENDING', '1 hour');
CALL pg_temp.job('mid-old', 5, 'PENDING', '3 hours');
-- created last, so it has the highest job_id but is the oldest
CALL pg_temp.job('mid-oldest', 5, 'PENDING', '5 hours');
SELECT is(pg_temp.next(), 'mid-oldest',
    'next_pending: the higher priority wins, then the oldest created_at (not the lowest job_id)');
SELECT results_eq(
    $$SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid('mid-oldest')$$,
    $$VALUES ('PENDING'::text)$$,
    'next_pending: the job it returns is not claimed');
SELECT is(pg_temp.next(), 'mid-oldest',
    'next_pending: asking again returns the same job');

UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('mid-oldest');
SELECT is(pg_temp.next(), 'mid-old',
    'next_pending: once the first job runs, the next oldest of that priority comes');

-- children of a parent are jobs like any other; the parent itself is not
DO $$BEGIN
    PERFORM batchjob_create_child(pg_temp.jid('parent'), 1, 0, 10, NULL, 50);
END$$;
SELECT is((SELECT parent_job_id FROM batchjob_next_pending()), pg_temp.jid('parent'),
    'next_pending: a PENDING child of priority 50 comes before priority 5 jobs');
SELECT is((SELECT is_parent FROM batchjob_next_pending()), false,
    'next_pending: never returns a parent, although the parent has priority 100');

UPDATE batch_jobs SET status = 'CANCELLED' WHERE parent_job_id = pg_temp.jid('parent');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('mid-old');
SELECT is(pg_temp.next(), 'mid-new',
    'next_pending: finished children are skipped');

UPDATE batch_jobs SET status = 'FAILED'
    WHERE job_id IN (pg_temp.jid('mid-new'), pg_temp.jid('low'));
SELECT is((SELECT job_id FROM batchjob_next_pending()), NULL,
    'next_pending: NULL again when no PENDING non-parent job is left');

SELECT * FROM finish();
ROLLBACK;
