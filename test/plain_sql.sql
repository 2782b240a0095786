/*
 * test/plain_sql.sql - pgTAP: the rollup keeps parents right whatever SQL
 * changes their children: INSERT, UPDATE, DELETE, bulk statements, moving a
 * child between parents, upserts, MERGE and cascading deletes, and a
 * parent inserted together with its children in one statement.
 *
 * After each change a parent is checked two ways: against figures computed
 * here from its children (an oracle independent of the extension), and
 * against batchjob_refresh_parent(), which must find nothing to repair.
 */
BEGIN;
SELECT plan(65);
\ir pgtap/fixture.sql

-- A named parent's rolled-up figures as stored on it.
CREATE FUNCTION pg_temp.stored(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_build_object(
              'pending', child_pending, 'processing', child_processing,
              'completed', child_completed, 'failed', child_failed,
              'cancelled', child_cancelled, 'total_records', total_records,
              'processed_records', processed_records,
              'success_count', success_count, 'error_count', error_count,
              'status', status, 'error_details', error_details)
          FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;

-- The same figures computed from the parent's children by the status rules.
CREATE FUNCTION pg_temp.computed(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_build_object(
              'pending', c.pending, 'processing', c.processing,
              'completed', c.completed, 'failed', c.failed,
              'cancelled', c.cancelled, 'total_records', c.total_records,
              'processed_records', c.processed_records,
              'success_count', c.success_count, 'error_count', c.error_count,
              'status', CASE
                  WHEN c.n = 0 THEN p.status
                  -- a parent that has started never goes back to PENDING
                  WHEN c.pending = c.n AND p.started_at IS NULL THEN 'PENDING'
                  WHEN c.pending + c.processing > 0 THEN 'PROCESSING'
                  WHEN c.failed = c.n THEN 'FAILED'
                  WHEN c.cancelled = c.n THEN 'CANCELLED'
                  ELSE 'COMPLETED' END,
              'error_details', CASE
                  WHEN c.n = 0 THEN p.error_details
                  WHEN c.pending + c.processing = 0 AND c.failed > 0
                  THEN format('%s out of %s batch jobs failed', c.failed, c.n)
                  END)
          FROM batch_jobs p,
          LATERAL (SELECT count(*) AS n,
                          count(*) FILTER (WHERE status = 'PENDING') AS pending,
                          count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
                          count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
                          count(*) FILTER (WHERE status = 'FAILED') AS failed,
                          count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
                          coalesce(sum(total_records), 0) AS total_records,
                          coalesce(sum(processed_records), 0) AS processed_records,
                          coalesce(sum(success_count), 0) AS success_count,
                          coalesce(sum(error_count), 0) AS error_count
                     FROM batch_jobs WHERE parent_job_id = p.job_id) c
          WHERE p.job_id = pg_temp.jid($1) $$;

-- Runs batchjob_refresh_parent() on a named parent and returns the columns
-- it changed, as {"column": [before, after]}; {} when nothing changed.
CREATE FUNCTION pg_temp.refresh_diff(text) RETURNS jsonb LANGUAGE plpgsql
    AS $$
DECLARE
    before jsonb;
    after jsonb;
BEGIN
    SELECT to_jsonb(b) INTO before FROM batch_jobs b WHERE job_id = pg_temp.jid($1);
    PERFORM batchjob_refresh_parent(pg_temp.jid($1));
    SELECT to_jsonb(b) INTO after FROM batch_jobs b WHERE job_id = pg_temp.jid($1);
    RETURN (SELECT coalesce(jsonb_object_agg(a.key,
                                             jsonb_build_array(before -> a.key, a.value)),
                            '{}')
              FROM jsonb_each(after) a
             WHERE before -> a.key IS DISTINCT FROM a.value);
END
$$;

/* ---- INSERT ---- */

INSERT INTO ids SELECT 'a', job_id FROM batchjob_create_parent('{}', 'plain', 0, 1000);
INSERT INTO batch_jobs (parent_job_id, batch_number, total_records, created_by)
    VALUES (pg_temp.jid('a'), 1, 10, 'plain');
SELECT is(pg_temp.stored('a') -> 'total_records', '10',
    'insert: the first child''s total replaces the parent''s own total_records');
SELECT is(pg_temp.stored('a'), pg_temp.computed('a'),
    'insert of one child: the parent matches its children');
SELECT is(pg_temp.refresh_diff('a'), '{}',
    'insert of one child: refresh finds nothing to repair');

INSERT INTO batch_jobs (parent_job_id, batch_number, status, total_records,
                        processed_records, success_count, error_count, created_by)
    VALUES (pg_temp.jid('a'), 2, 'PROCESSING', 20, 2, 2, 0, 'plain'),
           (pg_temp.jid('a'), 3, 'COMPLETED', 30, 30, 25, 5, 'plain'),
           (pg_temp.jid('a'), 4, 'FAILED', 40, 4, 0, 4, 'plain');
SELECT is(pg_temp.stored('a'),
    '{"pending": 1, "processing": 1, "completed": 1, "failed": 1,
      "cancelled": 0, "total_records": 100, "processed_records": 36,
      "success_count": 27, "error_count": 9, "status": "PROCESSING",
      "error_details": null}'::jsonb,
    'insert of three children in one statement: the parent adds them all up');
SELECT is(pg_temp.refresh_diff('a'), '{}',
    'insert of three children: refresh finds nothing to repair');

/* ---- UPDATE of one child ---- */

UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.child('a', 1);
SELECT is(pg_temp.stored('a') -> 'processing', '2',
    'update of a child''s status: moves it between the parent''s counters');
SELECT is(pg_temp.stored('a'), pg_temp.computed('a'),
    'update of status: the parent matches its children');
SELECT is(pg_temp.refresh_diff('a'), '{}',
    'update of status: refresh finds nothing to repair');

UPDATE batch_jobs SET processed_records = 7, success_count = 5, error_count = 2
    WHERE job_id = pg_temp.child('a', 1);
SELECT is(pg_temp.stored('a') -> 'processed_records', '43',
    'update of processed_records: the parent''s sum moves by the difference');
SELECT is(pg_temp.stored('a'), pg_temp.computed('a'),
    'update of progress counters: the parent matches its children');
SELECT is(pg_temp.refresh_diff('a'), '{}',
    'update of progress counters: refresh finds nothing to repair');

UPDATE batch_jobs SET total_records = 15 WHERE job_id = pg_temp.child('a', 1);
UPDATE batch_jobs SET total_records = NULL WHERE job_id = pg_temp.child('a', 4);
SELECT is(pg_temp.stored('a') -> 'total_records', '65',
    'update of total_records (one grown, one set NULL): the parent''s total follows');
SELECT is(pg_temp.stored('a'), pg_temp.computed('a'),
    'update of total_records: the parent matches its children');
SELECT is(pg_temp.refresh_diff('a'), '{}',
    'update of total_records: refresh finds nothing to repair');

/* ---- DELETE of one child ---- */

DELETE FROM batch_jobs WHERE job_id = pg_temp.child('a', 3);
SELECT is(pg_temp.stored('a'),
    '{"pending": 0, "processing": 2, "completed": 0, "failed": 1,
      "cancelled": 0, "total_records": 35, "processed_records": 13,
      "success_count": 7, "error_count": 6, "status": "PROCESSING",
      "error_details": null}'::jsonb,
    'delete of a child: its status and figures leave the parent');
SELECT is(pg_temp.refresh_diff('a'), '{}',
    'delete of a child: refresh finds nothing to repair');

/* ---- bulk UPDATE ---- */

INSERT INTO ids SELECT 'b', job_id FROM batchjob_create_parent('{}', 'plain');
DO $$BEGIN PERFORM batchjob_split(pg_temp.jid('b'), 100, 1); END$$;
UPDATE batch_jobs SET status = 'PROCESSING', processed_records = 1
    WHERE parent_job_id = pg_temp.jid('b');
SELECT is(pg_temp.stored('b'),
    '{"pending": 0, "processing": 100, "completed": 0, "failed": 0,
      "cancelled": 0, "total_records": 100, "processed_records": 100,
      "success_count": 0, "error_count": 0, "status": "PROCESSING",
      "error_details": null}'::jsonb,
    'bulk update of 100 children: the parent counts all of them');
UPDATE batch_jobs
    SET status = CASE WHEN batch_number % 5 < 3 THEN 'COMPLETED' ELSE 'FAILED' END,
        success_count = CASE WHEN batch_number % 5 < 3 THEN 1 ELSE 0 END,
        error_count = CASE WHEN batch_number % 5 < 3 THEN 0 ELSE 1 END
    WHERE parent_job_id = pg_temp.jid('b');
SELECT is(pg_temp.stored('b'),
    '{"pending": 0, "processing": 0, "completed": 60, "failed": 40,
      "cancelled": 0, "total_records": 100, "processed_records": 100,
      "success_count": 60, "error_count": 40, "status": "COMPLETED",
      "error_details": "40 out of 100 batch jobs failed"}'::jsonb,
    'bulk update finishing 100 children: 60 COMPLETED, 40 FAILED');
SELECT is(pg_temp.refresh_diff('b'), '{}',
    'bulk update: refresh finds nothing to repair');

UPDATE batch_jobs SET error_count = error_count + 1
    WHERE parent_job_id IN (pg_temp.jid('a'), pg_temp.jid('b'));
SELECT is(jsonb_build_array(pg_temp.stored('a') -> 'error_count',
                            pg_temp.stored('b') -> 'error_count'),
    '[9, 140]'::jsonb,
    'one update over the children of two parents: each parent gets its own share');
SELECT is(jsonb_build_array(pg_temp.stored('a'), pg_temp.stored('b')),
          jsonb_build_array(pg_temp.computed('a'), pg_temp.computed('b')),
    'update over two parents: both match their children');
SELECT is(pg_temp.refresh_diff('a') || pg_temp.refresh_diff('b'), '{}',
    'update over two parents: refresh finds nothing to repair on either');

/* ---- moving children between parents ---- */

INSERT INTO ids SELECT 'c', job_id FROM batchjob_create_parent('{}', 'plain');
DO $$BEGIN PERFORM batchjob_split(pg_temp.jid('c'), 30, 10); END$$;
CREATE TEMP TABLE before_move AS
    SELECT pg_temp.stored('a') AS a, pg_temp.stored('c') AS c;

UPDATE batch_jobs SET parent_job_id = pg_temp.jid('c'), batch_number = 4
    WHERE job_id = pg_temp.child('a', 4);
SELECT is(jsonb_build_array(pg_temp.stored('a') -> 'failed', pg_temp.stored('c') -> 'failed'),
    jsonb_build_array((SELECT (a -> 'failed')::int - 1 FROM before_move),
                      (SELECT (c -> 'failed')::int + 1 FROM before_move)),
    'moving a FAILED child: it leaves the old parent''s count and joins the new one''s');
SELECT is(jsonb_build_array(pg_temp.stored('a'), pg_temp.stored('c')),
          jsonb_build_array(pg_temp.computed('a'), pg_temp.computed('c')),
    'moving a child: both parents match their children');
SELECT is(pg_temp.refresh_diff('a') || pg_temp.refresh_diff('c'), '{}',
    'moving a child: refresh finds nothing to repair on either parent');

UPDATE batch_jobs SET parent_job_id = pg_temp.jid('a'), batch_number = 9,
        status = 'COMPLETED', processed_records = 10, success_count = 10
    WHERE job_id = pg_temp.child('c', 1);
SELECT is(jsonb_build_array(pg_temp.stored('a'), pg_temp.stored('c')),
          jsonb_build_array(pg_temp.computed('a'), pg_temp.computed('c')),
    'moving a child and finishing it in one statement: both parents match their children');
SELECT is(pg_temp.refresh_diff('a') || pg_temp.refresh_diff('c'), '{}',
    'moving and finishing: refresh finds nothing to repair on either parent');

-- every child of d moves away
INSERT INTO ids SELECT 'd', job_id FROM batchjob_create_parent('{}', 'plain');
INSERT INTO batch_jobs (parent_job_id, batch_number, total_records,
                        processed_records, status, created_by)
    VALUES (pg_temp.jid('d'), 1, 8, 3, 'PROCESSING', 'plain');
UPDATE batch_jobs SET parent_job_id = pg_temp.jid('c'), batch_number = 50
    WHERE parent_job_id = pg_temp.jid('d');
SELECT is(pg_temp.stored('d') - 'status' - 'error_details',
    '{"pending": 0, "processing": 0, "completed": 0, "failed": 0,
      "cancelled": 0, "total_records": 0, "processed_records": 0,
      "success_count": 0, "error_count": 0}'::jsonb,
    'moving a parent''s only child away: its counters and figures drop to zero');
SELECT is(pg_temp.stored('c'), pg_temp.computed('c'),
    'the parent that received it matches its children');

UPDATE batch_jobs SET parent_job_id = NULL WHERE job_id = pg_temp.child('c', 50);
SELECT is(pg_temp.stored('c'), pg_temp.computed('c'),
    'detaching a child (parent_job_id NULL): the parent matches its remaining children');
SELECT is(pg_temp.refresh_diff('c'), '{}',
    'detaching a child: refresh finds nothing to repair');

/* ---- changes that leave the figures alone do not touch the parent ---- */

CREATE TEMP TABLE c_ctid AS
    SELECT ctid AS t FROM batch_jobs WHERE job_id = pg_temp.jid('c');
UPDATE batch_jobs SET criteria = '{"changed": true}', priority = 3
    WHERE parent_job_id = pg_temp.jid('c');
SELECT is((SELECT ctid FROM batch_jobs WHERE job_id = pg_temp.jid('c')),
    (SELECT t FROM c_ctid),
    'updating only the children''s criteria and priority leaves the parent''s row untouched');

/* ---- upsert and MERGE ---- */

INSERT INTO batch_jobs (job_id, parent_job_id, batch_number, status, total_records,
                        processed_records, created_by)
    SELECT job_id, parent_job_id, batch_number, 'PENDING', total_records, 0, 'plain'
      FROM batch_jobs WHERE parent_job_id = pg_temp.jid('c')
    UNION ALL
    SELECT nextval(pg_get_serial_sequence('batch_jobs', 'job_id')),
           pg_temp.jid('c'), 77, 'PENDING', 5, 0, 'plain'
    ON CONFLICT (job_id) DO UPDATE
        SET status = 'PROCESSING',
            processed_records = coalesce(excluded.total_records, 0);
SELECT is(pg_temp.stored('c'), pg_temp.computed('c'),
    'INSERT ... ON CONFLICT DO UPDATE (inserting one child, updating the rest): the parent matches');
SELECT is(pg_temp.refresh_diff('c'), '{}',
    'upsert: refresh finds nothing to repair');

MERGE INTO batch_jobs j
    USING (SELECT job_id, batch_number FROM batch_jobs
            WHERE parent_job_id = pg_temp.jid('c')) s
    ON j.job_id = s.job_id
    WHEN MATCHED AND s.batch_number = 77 THEN DELETE
    WHEN MATCHED THEN UPDATE SET status = 'COMPLETED', success_count = 1;
SELECT is(pg_temp.stored('c'), pg_temp.computed('c'),
    'MERGE deleting one child and finishing the others: the parent matches');
SELECT is(pg_temp.refresh_diff('c'), '{}',
    'MERGE: refresh finds nothing to repair');
SELECT is(pg_temp.stored('c') ->> 'status', 'COMPLETED',
    'MERGE: the parent finished with its children');

/* ---- a parent and its children in one INSERT ---- */

WITH n AS (SELECT nextval(pg_get_serial_sequence('batch_jobs', 'job_id')) AS p),
     ins AS (
         INSERT INTO batch_jobs (job_id, is_parent, parent_job_id, batch_number,
                                 status, total_records, processed_records,
                                 created_by)
         SELECT p, true, NULL, NULL, 'PENDING', NULL, 0, 'plain' FROM n
         UNION ALL
         SELECT nextval(pg_get_serial_sequence('batch_jobs', 'job_id')), false,
                p, b, s, 10, 10, 'plain'
           FROM n, (VALUES (1, 'COMPLETED'), (2, 'FAILED')) AS v(b, s)
         RETURNING job_id, is_parent)
INSERT INTO ids SELECT 'e', job_id FROM ins WHERE is_parent;
SELECT is(pg_temp.stored('e'),
    '{"pending": 0, "processing": 0, "completed": 1, "failed": 1,
      "cancelled": 0, "total_records": 20, "processed_records": 20,
      "success_count": 0, "error_count": 0, "status": "COMPLETED",
      "error_details": "1 out of 2 batch jobs failed"}'::jsonb,
    'one INSERT creating a parent and its children: the parent is rolled up');
SELECT is(pg_temp.refresh_diff('e'), '{}',
    'parent and children in one INSERT: refresh finds nothing to repair');

/* ---- nested parents ---- */

INSERT INTO ids SELECT 'top', job_id FROM batchjob_create_parent('{}', 'plain');
WITH ins AS (
    INSERT INTO batch_jobs (is_parent, parent_job_id, batch_number, created_by)
    VALUES (true, pg_temp.jid('top'), 1, 'plain') RETURNING job_id)
INSERT INTO ids SELECT 'mid', job_id FROM ins;
DO $$BEGIN PERFORM batchjob_split(pg_temp.jid('mid'), 25, 10); END$$;
UPDATE batch_jobs SET status = 'PROCESSING', processed_records = 4, success_count = 3,
        error_count = 1
    WHERE parent_job_id = pg_temp.jid('mid') AND batch_number = 2;
SELECT is(pg_temp.stored('top') - 'pending' - 'processing',
    '{"completed": 0, "failed": 0, "cancelled": 0, "total_records": 25,
      "processed_records": 4, "success_count": 3, "error_count": 1,
      "status": "PROCESSING", "error_details": null}'::jsonb,
    'nested: a grandchild''s progress reaches the top parent through the middle one');
SELECT is(jsonb_build_array(pg_temp.stored('mid'), pg_temp.stored('top')),
          jsonb_build_array(pg_temp.computed('mid'), pg_temp.computed('top')),
    'nested: the middle and the top parent match their children');
SELECT is(pg_temp.refresh_diff('mid') || pg_temp.refresh_diff('top'), '{}',
    'nested: refresh finds nothing to repair on either level');

/* ---- DELETE over several parents, and of parents ---- */

DELETE FROM batch_jobs
    WHERE parent_job_id IN (pg_temp.jid('a'), pg_temp.jid('b'))
      AND (status = 'FAILED' OR batch_number % 2 = 0);
SELECT is(jsonb_build_array(pg_temp.stored('a'), pg_temp.stored('b')),
          jsonb_build_array(pg_temp.computed('a'), pg_temp.computed('b')),
    'one delete over the children of two parents: both match what is left');
SELECT is(pg_temp.refresh_diff('a') || pg_temp.refresh_diff('b'), '{}',
    'delete over two parents: refresh finds nothing to repair');

CREATE TEMP TABLE b_before AS SELECT pg_temp.stored('b') AS s;
DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('c');
SELECT is((SELECT count(*) FROM batch_jobs WHERE parent_job_id = pg_temp.jid('c')),
    0::bigint, 'deleting a parent deletes its children');
SELECT is((SELECT count(*) FROM batch_jobs WHERE job_id = pg_temp.jid('c')),
    0::bigint, 'deleting a parent: the parent is gone');
SELECT is(pg_temp.stored('b'), (SELECT s FROM b_before),
    'deleting a parent leaves other parents as they were');

DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('mid');
SELECT is(pg_temp.stored('top') - 'status',
    '{"pending": 0, "processing": 0, "completed": 0, "failed": 0,
      "cancelled": 0, "total_records": 0, "processed_records": 0,
      "success_count": 0, "error_count": 0, "error_details": null}'::jsonb,
    'deleting a nested parent: its subtree leaves the top parent''s figures');
SELECT is((SELECT count(*) FROM batch_jobs WHERE parent_job_id = pg_temp.jid('mid')),
    0::bigint, 'deleting a nested parent deletes its children');

DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('e') OR parent_job_id = pg_temp.jid('e');
SELECT is((SELECT count(*) FROM batch_jobs WHERE job_id = pg_temp.jid('e')
                                               OR parent_job_id = pg_temp.jid('e')),
    0::bigint, 'one DELETE of a parent together with its children succeeds');

/* ---- a new child after all were deleted ---- */

DELETE FROM batch_jobs WHERE parent_job_id = pg_temp.jid('a');
SELECT is(pg_temp.stored('a') -> 'total_records', '0',
    'deleting every child: the parent''s total drops to 0');
INSERT INTO batch_jobs (parent_job_id, batch_number, total_records, created_by)
    VALUES (pg_temp.jid('a'), 1, 12, 'plain');
SELECT is(pg_temp.stored('a'), pg_temp.computed('a'),
    'a new child after all were deleted: the parent matches it');
SELECT is(pg_temp.refresh_diff('a'), '{}',
    'a new child after all were deleted: refresh finds nothing to repair');

/* ---- COPY ---- */

-- COPY data cannot name a job created here, so this parent gets a fixed,
-- negative job_id that the identity never hands out
INSERT INTO batch_jobs (job_id, is_parent, created_by) VALUES (-42, true, 'plain');
INSERT INTO ids VALUES ('f', -42);
COPY batch_jobs (parent_job_id, batch_number, status, total_records,
                 processed_records, success_count, created_by) FROM stdin;
-42	1	COMPLETED	5	5	5	plain
-42	2	COMPLETED	7	7	6	plain
-42	3	CANCELLED	9	0	0	plain
\.
SELECT is(pg_temp.stored('f'),
    '{"pending": 0, "processing": 0, "completed": 2, "failed": 0,
      "cancelled": 1, "total_records": 21, "processed_records": 12,
      "success_count": 11, "error_count": 0, "status": "COMPLETED",
      "error_details": null}'::jsonb,
    'COPY of finished children: the parent is rolled up and COMPLETED');
SELECT is(pg_temp.refresh_diff('f'), '{}',
    'COPY: refresh finds nothing to repair');

/* ---- a parent and its children in one statement ---- */

-- a new parent (zero counters) with its children: they are added to it
INSERT INTO batch_jobs (job_id, is_parent, parent_job_id, batch_number, status,
                        total_records, processed_records, success_count,
                        error_count, created_by)
VALUES (-50, true, NULL, NULL, 'PENDING', NULL, 0, 0, 0, 'plain'),
       (DEFAULT, false, -50, 1, 'COMPLETED', 5, 5, 4, 1, 'plain'),
       (DEFAULT, false, -50, 2, 'PROCESSING', 7, 2, 2, 0, 'plain'),
       (DEFAULT, false, -50, 3, 'PENDING', 9, 0, 0, 0, 'plain');
INSERT INTO ids VALUES ('g', -50);
SELECT is(pg_temp.stored('g'),
    '{"pending": 1, "processing": 1, "completed": 1, "failed": 0,
      "cancelled": 0, "total_records": 21, "processed_records": 7,
      "success_count": 6, "error_count": 1, "status": "PROCESSING",
      "error_details": null}'::jsonb,
    'a new parent inserted with its children in one statement: they roll up');
SELECT is(pg_temp.refresh_diff('g'), '{}',
    'a new parent with its children: refresh finds nothing to repair');

-- the same two levels deep: a new root, a new parent under it, its children
-- (ids from the identity, so that the root's is the smaller, as usual)
INSERT INTO ids SELECT 'h', nextval(pg_get_serial_sequence('batch_jobs', 'job_id'));
INSERT INTO ids SELECT 'h1', nextval(pg_get_serial_sequence('batch_jobs', 'job_id'));
INSERT INTO batch_jobs (job_id, is_parent, parent_job_id, batch_number, status,
                        total_records, processed_records, success_count,
                        created_by)
VALUES (pg_temp.jid('h'), true, NULL, NULL, 'PENDING', NULL, 0, 0, 'plain'),
       (pg_temp.jid('h1'), true, pg_temp.jid('h'), 1, 'PENDING', NULL, 0, 0, 'plain'),
       (DEFAULT, false, pg_temp.jid('h1'), 1, 'COMPLETED', 4, 4, 4, 'plain'),
       (DEFAULT, false, pg_temp.jid('h1'), 2, 'CANCELLED', 6, 0, 0, 'plain');
SELECT is(pg_temp.stored('h1'), pg_temp.computed('h1'),
    'nested, in one statement: the new parent matches its children');
SELECT is(pg_temp.stored('h'), pg_temp.computed('h'),
    'nested, in one statement: the new root matches its child parent');
SELECT is(pg_temp.stored('h') ->> 'status', 'COMPLETED',
    'nested, in one statement: the root is COMPLETED, as its parent is');

-- a parent that arrives with its children already counted (what a restore
-- of a dump brings) and those children in the same statement: not again
INSERT INTO batch_jobs (job_id, is_parent, parent_job_id, batch_number, status,
                        total_records, processed_records, success_count,
                        child_completed, started_at, completed_at, created_by)
VALUES (DEFAULT, false, -70, 1, 'COMPLETED', 5, 5, 5, 0, now(), now(), 'plain'),
       (-70, true, NULL, NULL, 'COMPLETED', 12, 12, 12, 2, now(), now(), 'plain'),
       (DEFAULT, false, -70, 2, 'COMPLETED', 7, 7, 7, 0, now(), now(), 'plain');
INSERT INTO ids VALUES ('k', -70);
SELECT is(pg_temp.stored('k'), pg_temp.computed('k'),
    'a parent inserted with its children counted: they are not added again');
SELECT is(pg_temp.refresh_diff('k'), '{}',
    'a parent inserted with its children counted: refresh finds nothing to repair');

/* ---- the checks above can fail ---- */

UPDATE batch_jobs SET processed_records = processed_records + 1, child_failed = child_failed + 1
    WHERE job_id = pg_temp.jid('b');
SELECT isnt(pg_temp.stored('b'), pg_temp.computed('b'),
    'a parent corrupted by hand no longer matches its children');
SELECT is(pg_temp.refresh_diff('b') ?& ARRAY['processed_records', 'child_failed', 'error_details'],
    true, 'refresh repairs the corrupted columns and the error_details they drove');
SELECT is(pg_temp.stored('b'), pg_temp.computed('b'),
    'after the refresh the parent matches its children again');

SELECT * FROM finish();
ROLLBACK;
