/*
 * test/errors.sql - pgTAP: what plain SQL on batch_jobs may not do, with the
 * SQLSTATE of each refusal, and that a refused statement leaves the parent
 * and its children exactly as they were.
 */
BEGIN;
SELECT plan(55);
\ir pgtap/fixture.sql

-- Every column of a named parent and of its children.
CREATE FUNCTION pg_temp.family(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_agg(to_jsonb(j) ORDER BY j.job_id)
          FROM batch_jobs j
          WHERE j.job_id = pg_temp.jid($1) OR j.parent_job_id = pg_temp.jid($1) $$;

/*
 * The family: parent e with batch 1 PROCESSING (5 of 10 done), 2 COMPLETED,
 * 3 CANCELLED and 4 FAILED; and a standalone job.
 */
INSERT INTO ids SELECT 'e', job_id FROM batchjob_create_parent('{}', 'errors');
DO $$BEGIN PERFORM batchjob_split(pg_temp.jid('e'), 40, 10); END$$;
UPDATE batch_jobs SET
        status = (ARRAY['PROCESSING', 'COMPLETED', 'CANCELLED', 'FAILED'])[batch_number],
        processed_records = (ARRAY[5, 10, 0, 3])[batch_number],
        success_count = (ARRAY[4, 10, 0, 0])[batch_number],
        error_count = (ARRAY[1, 0, 0, 3])[batch_number]
    WHERE parent_job_id = pg_temp.jid('e');
WITH j AS (INSERT INTO batch_jobs (created_by) VALUES ('errors') RETURNING job_id)
    INSERT INTO ids SELECT 'solo', job_id FROM j;
CREATE TEMP TABLE snap AS SELECT pg_temp.family('e') AS f;

SELECT results_eq(
    $$SELECT status, total_records, processed_records, child_processing,
             child_completed, child_cancelled, child_failed
        FROM batch_jobs WHERE job_id = pg_temp.jid('e')$$,
    $$VALUES ('PROCESSING'::text, 40::bigint, 18::bigint, 1::bigint, 1::bigint,
              1::bigint, 1::bigint)$$,
    '(setup) the parent rolled up its four children');

/* ---- counters ---- */

SELECT throws_ok(
    $$UPDATE batch_jobs SET processed_records = -1 WHERE job_id = pg_temp.child('e', 1)$$,
    '23514', NULL, 'a negative processed_records is refused (23514)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused negative processed_records the family is unchanged');
SELECT throws_ok(
    $$UPDATE batch_jobs SET error_count = -1 WHERE job_id = pg_temp.child('e', 1)$$,
    '23514', NULL, 'a negative error_count is refused (23514)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused negative error_count the family is unchanged');
SELECT throws_ok(
    $$UPDATE batch_jobs SET success_count = -1 WHERE job_id = pg_temp.child('e', 1)$$,
    '23514', NULL, 'a negative success_count is refused (23514)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET total_records = -1 WHERE job_id = pg_temp.child('e', 1)$$,
    '23514', NULL, 'a negative total_records is refused (23514)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused negative total_records the family is unchanged');
SELECT throws_ok(
    $$UPDATE batch_jobs SET processed_records = 11 WHERE job_id = pg_temp.child('e', 1)$$,
    '23514', NULL, 'a child''s processed_records above its total_records is refused (23514)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused processed_records > total_records the family is unchanged');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (parent_job_id, batch_number, total_records,
                              processed_records, created_by)
      VALUES (pg_temp.jid('e'), 5, 4, 5, 'errors')$$,
    '23514', NULL, 'inserting a child with processed_records above total_records is refused (23514)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused insert the family is unchanged');
SELECT throws_ok(
    $$UPDATE batch_jobs SET processed_records = processed_records + 1
       WHERE parent_job_id = pg_temp.jid('e')$$,
    '23514', NULL,
    'a bulk update that takes one child past its total is refused as a whole (23514)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused bulk update no child and not the parent changed');
SELECT throws_ok(
    $$UPDATE batch_jobs SET child_pending = -1 WHERE job_id = pg_temp.jid('e')$$,
    '23514', NULL, 'a negative child counter on the parent is refused (23514)');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (parent_job_id, batch_number, total_records, created_by)
      VALUES (pg_temp.jid('e'), 5, 9223372036854775807, 'errors')$$,
    '22003', NULL,
    'a child whose total_records pushes the parent''s sum past bigint is refused (22003)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused overflow the family is unchanged');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (parent_job_id, batch_number, batch_offset, created_by)
      VALUES (pg_temp.jid('e'), 5, -1, 'errors')$$,
    '23514', NULL, 'a negative batch_offset is refused (23514)');

/* ---- statuses ---- */

SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'DONE' WHERE job_id = pg_temp.child('e', 1)$$,
    '23514', format('job %s has unknown status "DONE"', pg_temp.child('e', 1)),
    'an unknown status is refused (23514)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused unknown status the family is unchanged');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (parent_job_id, batch_number, status, created_by)
      VALUES (pg_temp.jid('e'), 5, 'pending', 'errors')$$,
    '23514', NULL, 'inserting a child with an unknown (lowercase) status is refused (23514)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused insert of an unknown status the family is unchanged');

SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'PENDING' WHERE job_id = pg_temp.child('e', 2)$$,
    '55000',
    format('job %s is COMPLETED and cannot go back to PENDING', pg_temp.child('e', 2)),
    'a COMPLETED child cannot go back to PENDING (55000)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused COMPLETED -> PENDING the family is unchanged');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.child('e', 2)$$,
    '55000',
    format('job %s is COMPLETED and cannot go back to PROCESSING', pg_temp.child('e', 2)),
    'a COMPLETED child cannot go back to PROCESSING (55000)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'PENDING' WHERE job_id = pg_temp.child('e', 3)$$,
    '55000',
    format('job %s is CANCELLED and cannot go back to PENDING', pg_temp.child('e', 3)),
    'a CANCELLED child cannot go back to PENDING (55000)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.child('e', 3)$$,
    '55000', NULL, 'a CANCELLED child cannot go back to PROCESSING (55000)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused reopenings the family is unchanged');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'PENDING'
       WHERE parent_job_id = pg_temp.jid('e') AND batch_number IN (2, 4)$$,
    '55000', NULL,
    'retrying the FAILED child together with a COMPLETED one is refused as a whole (55000)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused mixed retry the FAILED child is still FAILED');

/* ---- the parent ---- */

SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = pg_temp.jid('e')$$,
    '55000',
    format('job %s cannot be set to COMPLETED: its status follows its children',
           pg_temp.jid('e')),
    'a parent with children cannot be set to a status its children do not give (55000)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused parent status the family is unchanged');
SELECT throws_ok(
    $$UPDATE batch_jobs SET is_parent = false WHERE job_id = pg_temp.jid('e')$$,
    '55000', format('job %s has children and must stay a parent', pg_temp.jid('e')),
    'clearing is_parent on a parent with children is refused (55000)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused is_parent change the family is unchanged');

/* ---- parent_job_id ---- */

SELECT throws_ok(
    $$INSERT INTO batch_jobs (parent_job_id, batch_number, created_by)
      VALUES (pg_temp.child('e', 1), 1, 'errors')$$,
    '22023', format('job %s is not a parent job', pg_temp.child('e', 1)),
    'inserting a child under a child is refused (22023)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused child of a child the family is unchanged');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (parent_job_id, batch_number, created_by)
      VALUES (pg_temp.jid('solo'), 1, 'errors')$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('solo')),
    'inserting a child under a standalone job is refused (22023)');
SELECT is(
    (SELECT child_pending FROM batch_jobs WHERE job_id = pg_temp.jid('solo')),
    0::bigint, 'the standalone job counts no child after the refused insert');
SELECT throws_ok(
    $$UPDATE batch_jobs SET parent_job_id = pg_temp.jid('solo')
       WHERE job_id = pg_temp.child('e', 4)$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('solo')),
    'moving a child under a standalone job is refused (22023)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused move the child is still in the family, counted once');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (parent_job_id, batch_number, created_by)
      VALUES (-1, 1, 'errors')$$,
    '23503', NULL, 'inserting a child of a missing parent is refused (23503)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET parent_job_id = -1 WHERE job_id = pg_temp.child('e', 4)$$,
    '23503', NULL, 'moving a child to a missing parent is refused (23503)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused moves to a missing parent the family is unchanged');
SELECT throws_ok(
    $$UPDATE batch_jobs SET parent_job_id = job_id WHERE job_id = pg_temp.child('e', 4)$$,
    '23514', NULL, 'a job cannot be its own parent (23514)');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (parent_job_id, batch_number, created_by)
      VALUES (pg_temp.jid('e'), 3, 'errors')$$,
    '23505', NULL, 'a second child with the same batch_number is refused (23505)');
SELECT is(pg_temp.family('e'), (SELECT f FROM snap),
    'after the refused duplicate batch the family is unchanged');

/* ---- cycles through parent_job_id ---- */

-- g1 <- g2 <- g3: three nested parents
INSERT INTO ids SELECT 'g1', job_id FROM batchjob_create_parent('{}', 'errors');
WITH j AS (INSERT INTO batch_jobs (is_parent, parent_job_id, batch_number, created_by)
           VALUES (true, pg_temp.jid('g1'), 1, 'errors') RETURNING job_id)
    INSERT INTO ids SELECT 'g2', job_id FROM j;
WITH j AS (INSERT INTO batch_jobs (is_parent, parent_job_id, batch_number, created_by)
           VALUES (true, pg_temp.jid('g2'), 1, 'errors') RETURNING job_id)
    INSERT INTO ids SELECT 'g3', job_id FROM j;
CREATE TEMP TABLE g_snap AS SELECT pg_temp.family('g1') AS f;
SELECT throws_ok(
    $$UPDATE batch_jobs SET parent_job_id = pg_temp.jid('g2') WHERE job_id = pg_temp.jid('g1')$$,
    '22023', format('job %s cannot be placed under job %s', pg_temp.jid('g1'), pg_temp.jid('g2')),
    'a parent cannot be placed under its own child (22023)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET parent_job_id = pg_temp.jid('g3') WHERE job_id = pg_temp.jid('g1')$$,
    '22023', format('job %s cannot be placed under job %s', pg_temp.jid('g1'), pg_temp.jid('g3')),
    'a parent cannot be placed under its grandchild (22023)');
SELECT is(pg_temp.family('g1'), (SELECT f FROM g_snap),
    'after the refused cycles the nested parents are unchanged');

/* ---- what is allowed ---- */

SELECT lives_ok(
    $$UPDATE batch_jobs SET status = 'PENDING' WHERE job_id = pg_temp.child('e', 4)$$,
    'a FAILED child can go back to PENDING');
SELECT lives_ok(
    $$UPDATE batch_jobs SET status = 'FAILED' WHERE job_id = pg_temp.child('e', 4)$$,
    'and fail again');
SELECT lives_ok(
    $$UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.child('e', 4)$$,
    'a FAILED child can go straight back to PROCESSING');
SELECT results_eq(
    $$SELECT status, child_processing, child_failed FROM batch_jobs
       WHERE job_id = pg_temp.jid('e')$$,
    $$VALUES ('PROCESSING'::text, 2::bigint, 0::bigint)$$,
    'the retried child is counted as PROCESSING on the parent');

INSERT INTO ids SELECT 'empty', job_id FROM batchjob_create_parent('{}', 'errors');
SELECT lives_ok(
    $$UPDATE batch_jobs SET is_parent = false WHERE job_id = pg_temp.jid('empty')$$,
    'clearing is_parent on a parent without children is allowed');
SELECT throws_ok(
    $$SELECT batchjob_create_child(pg_temp.jid('empty'), 1, 0, 10)$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('empty')),
    'a former parent takes no children (22023)');

SELECT * FROM finish();
ROLLBACK;
