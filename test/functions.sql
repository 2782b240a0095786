/*
 * test/functions.sql - pgTAP: the SQL-callable functions of batchjob, their
 * results and their argument errors (create_parent, create_child, split,
 * children, child_counts, refresh_parent).  batchjob_next_pending() has a
 * file of its own because it reads the whole table.
 */
BEGIN;
SELECT plan(75);
\ir pgtap/fixture.sql

-- A named parent's figures, as stored.
CREATE FUNCTION pg_temp.figures(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_build_object(
              'status', status, 'error_details', error_details,
              'total_records', total_records,
              'processed_records', processed_records,
              'success_count', success_count, 'error_count', error_count,
              'pending', child_pending, 'processing', child_processing,
              'completed', child_completed, 'failed', child_failed,
              'cancelled', child_cancelled,
              'completed_at_set', completed_at IS NOT NULL)
          FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;

/* ---- batchjob_create_parent ---- */

INSERT INTO ids SELECT 'p', job_id
    FROM batchjob_create_parent('{"source": "orders"}', 'alice', 3, 50);

SELECT is((SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid('p')),
          'PENDING', 'create_parent: a new parent is PENDING');
SELECT is((SELECT is_parent FROM batch_jobs WHERE job_id = pg_temp.jid('p')),
          true, 'create_parent: a new parent has is_parent true');
SELECT results_eq(
    $$SELECT criteria, created_by, priority, total_records, parent_job_id
        FROM batch_jobs WHERE job_id = pg_temp.jid('p')$$,
    $$VALUES ('{"source": "orders"}'::jsonb, 'alice'::text, 3, 50::bigint,
              NULL::bigint)$$,
    'create_parent: criteria, created_by, priority and total_records are stored');
SELECT results_eq(
    $$SELECT status, is_parent, priority, total_records, created_by
        FROM batchjob_create_parent('[]', 'bob')$$,
    $$VALUES ('PENDING'::text, true, 0, NULL::bigint, 'bob'::text)$$,
    'create_parent: returns the new row; priority defaults to 0 and total_records to NULL');
SELECT results_eq(
    $$SELECT total_records, child_pending + child_processing + child_completed
             + child_failed + child_cancelled
        FROM batchjob_create_parent('{}', 'bob', -5, 0)$$,
    $$VALUES (0::bigint, 0::bigint)$$,
    'create_parent: total_records 0 is accepted and a new parent counts no children');
SELECT throws_ok($$SELECT batchjob_create_parent(NULL, 'alice')$$,
    '22004', 'criteria must not be null',
    'create_parent: NULL criteria is refused (22004)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', NULL)$$,
    '22004', 'created_by must not be null',
    'create_parent: NULL created_by is refused (22004)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'alice', NULL)$$,
    '22004', 'priority must not be null',
    'create_parent: NULL priority is refused (22004)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'alice', 0, -1)$$,
    '22023', 'total_records must not be negative: -1',
    'create_parent: negative total_records is refused (22023)');

/* ---- batchjob_create_child ---- */

INSERT INTO ids SELECT 'pc', job_id
    FROM batchjob_create_parent('{"from": "parent"}', 'carol', 7);

SELECT results_eq(
    format($$SELECT status, is_parent, parent_job_id, batch_number,
                    batch_offset, batch_size, total_records
               FROM batchjob_create_child(%s, 1, 0, 25)$$, pg_temp.jid('pc')),
    format($$VALUES ('PENDING'::text, false, %s::bigint, 1, 0::bigint, 25,
                     25::bigint)$$, pg_temp.jid('pc')),
    'create_child: returns a PENDING child with the batch fields and total_records = batch_size');
SELECT results_eq(
    format($$SELECT criteria, priority, created_by FROM batch_jobs
              WHERE job_id = %s$$, pg_temp.child('pc', 1)),
    $$VALUES ('{"from": "parent"}'::jsonb, 7, 'carol'::text)$$,
    'create_child: criteria, priority and created_by default to the parent''s');

SELECT lives_ok(
    format($$SELECT batchjob_create_child(%s, 2, 25, 25, '{"own": true}')$$,
           pg_temp.jid('pc')),
    'create_child: accepts an explicit criteria');
SELECT results_eq(
    format($$SELECT criteria, priority FROM batch_jobs WHERE job_id = %s$$,
           pg_temp.child('pc', 2)),
    $$VALUES ('{"own": true}'::jsonb, 7)$$,
    'create_child: an explicit criteria wins, priority still the parent''s');
SELECT lives_ok(
    format($$SELECT batchjob_create_child(%s, 3, 50, 25, NULL, 0)$$,
           pg_temp.jid('pc')),
    'create_child: accepts an explicit priority');
SELECT results_eq(
    format($$SELECT criteria, priority, created_by FROM batch_jobs
              WHERE job_id = %s$$, pg_temp.child('pc', 3)),
    $$VALUES ('{"from": "parent"}'::jsonb, 0, 'carol'::text)$$,
    'create_child: an explicit priority 0 wins over the parent''s 7');
SELECT lives_ok(
    format($$SELECT batchjob_create_child(%s, 0, 0, 1)$$, pg_temp.jid('pc')),
    'create_child: batch_number 0 and batch_offset 0 are accepted');
SELECT is(pg_temp.figures('pc') - 'completed_at_set',
    '{"status": "PENDING", "error_details": null, "total_records": 76,
      "processed_records": 0, "success_count": 0, "error_count": 0,
      "pending": 4, "processing": 0, "completed": 0, "failed": 0,
      "cancelled": 0}'::jsonb,
    'create_child: the parent counts its 4 PENDING children and their 76 records');

SELECT throws_ok($$SELECT batchjob_create_child(-1, 1, 0, 10)$$,
    '23503', 'parent job -1 does not exist',
    'create_child: a missing parent is refused (23503)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, 1, 0, 10)$$, pg_temp.child('pc', 1)),
    '22023', format('job %s is not a parent job', pg_temp.child('pc', 1)),
    'create_child: a parent that is not a parent job is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, 9, 0, 0)$$, pg_temp.jid('pc')),
    '22023', 'batch_size must be positive: 0',
    'create_child: batch_size 0 is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, 9, 0, -5)$$, pg_temp.jid('pc')),
    '22023', 'batch_size must be positive: -5',
    'create_child: a negative batch_size is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, 9, -1, 10)$$, pg_temp.jid('pc')),
    '22023', 'batch_offset must not be negative: -1',
    'create_child: a negative batch_offset is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, -1, 0, 10)$$, pg_temp.jid('pc')),
    '22023', 'batch_number must not be negative: -1',
    'create_child: a negative batch_number is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, 2, 0, 10)$$, pg_temp.jid('pc')),
    '23505', format('parent job %s already has a batch 2', pg_temp.jid('pc')),
    'create_child: a duplicate batch_number under the parent is refused (23505)');
SELECT throws_ok($$SELECT batchjob_create_child(NULL, 1, 0, 10)$$,
    '22004', 'parent_job_id must not be null',
    'create_child: NULL parent_job_id is refused (22004)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, NULL, 0, 10)$$, pg_temp.jid('pc')),
    '22004', 'batch_number must not be null',
    'create_child: NULL batch_number is refused (22004)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, 9, NULL, 10)$$, pg_temp.jid('pc')),
    '22004', 'batch_offset must not be null',
    'create_child: NULL batch_offset is refused (22004)');
SELECT throws_ok(
    format($$SELECT batchjob_create_child(%s, 9, 0, NULL)$$, pg_temp.jid('pc')),
    '22004', 'batch_size must not be null',
    'create_child: NULL batch_size is refused (22004)');
SELECT is((SELECT count(*) FROM batch_jobs WHERE parent_job_id = pg_temp.jid('pc')),
    4::bigint, 'create_child: the refused calls added no child');

/* ---- batchjob_split ---- */

INSERT INTO ids SELECT 's10', job_id
    FROM batchjob_create_parent('{"split": 10}', 'dave', 4, 999);
CREATE TEMP TABLE split10 AS
    SELECT * FROM batchjob_split(pg_temp.jid('s10'), 10, 3);

SELECT results_eq(
    $$SELECT batch_number, batch_offset, batch_size, total_records FROM split10$$,
    $$VALUES (1, 0::bigint, 3, 3::bigint), (2, 3, 3, 3), (3, 6, 3, 3),
             (4, 9, 1, 1)$$,
    'split: 10 records by 3 gives batches 1..4 at offsets 0,3,6,9, the last holding the remainder');
SELECT results_eq(
    $$SELECT status, is_parent, parent_job_id, criteria, priority, created_by
        FROM split10 ORDER BY batch_number$$,
    format($$SELECT 'PENDING'::text, false, %s::bigint, '{"split": 10}'::jsonb,
                    4, 'dave'::text FROM generate_series(1, 4)$$,
           pg_temp.jid('s10')),
    'split: every batch is a PENDING child with the parent''s criteria, priority and created_by');
SELECT results_eq(
    format($$SELECT job_id FROM batch_jobs WHERE parent_job_id = %s
              ORDER BY batch_number$$, pg_temp.jid('s10')),
    $$SELECT job_id FROM split10 ORDER BY batch_number$$,
    'split: the returned rows are the stored children');
SELECT is(pg_temp.figures('s10') - 'completed_at_set',
    '{"status": "PENDING", "error_details": null, "total_records": 10,
      "processed_records": 0, "success_count": 0, "error_count": 0,
      "pending": 4, "processing": 0, "completed": 0, "failed": 0,
      "cancelled": 0}'::jsonb,
    'split: the parent''s total_records becomes 10 (replacing 999) and it counts 4 PENDING children');

INSERT INTO ids SELECT 's9', job_id FROM batchjob_create_parent('{}', 'dave');
SELECT results_eq(
    format($$SELECT batch_number, batch_offset, batch_size
               FROM batchjob_split(%s, 9, 3)$$, pg_temp.jid('s9')),
    $$VALUES (1, 0::bigint, 3), (2, 3::bigint, 3), (3, 6::bigint, 3)$$,
    'split: an exact multiple gives full batches only');
SELECT is((SELECT total_records FROM batch_jobs WHERE job_id = pg_temp.jid('s9')),
    9::bigint, 'split: the parent''s total_records is set on an exact multiple');

INSERT INTO ids SELECT 's5', job_id FROM batchjob_create_parent('{}', 'dave');
SELECT results_eq(
    format($$SELECT batch_number, batch_offset, batch_size, total_records
               FROM batchjob_split(%s, 5, 100)$$, pg_temp.jid('s5')),
    $$VALUES (1, 0::bigint, 5, 5::bigint)$$,
    'split: a batch_size above the total gives one batch of the total');

INSERT INTO ids SELECT 's0', job_id
    FROM batchjob_create_parent('{}', 'dave', 0, 100);
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('s0'), 0, 10)),
    0::bigint, 'split: 0 records returns no batch');
SELECT results_eq(
    $$SELECT total_records, status,
             (SELECT count(*) FROM batch_jobs c WHERE c.parent_job_id = p.job_id)
        FROM batch_jobs p WHERE job_id = pg_temp.jid('s0')$$,
    $$VALUES (0::bigint, 'PENDING'::text, 0::bigint)$$,
    'split: 0 records sets the parent''s total_records to 0 and creates no child');

INSERT INTO ids SELECT 'big', job_id FROM batchjob_create_parent('{}', 'erin');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('big'), 2500, 1)),
    2500::bigint, 'split: 2500 batches are all returned');
SELECT is(
    (SELECT count(*) FROM batchjob_children(pg_temp.jid('big'))
                          WITH ORDINALITY AS c
      WHERE c.batch_number = c.ordinality AND c.batch_offset = c.ordinality - 1),
    2500::bigint,
    'children: all 2500 children come back, in batch_number order');

SELECT throws_ok(
    format($$SELECT batchjob_split(%s, 10, 3)$$, pg_temp.jid('s10')),
    '55000', format('parent job %s already has children', pg_temp.jid('s10')),
    'split: a second split of the same parent is refused (55000)');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, 10, 3)$$, pg_temp.jid('pc')),
    '55000', format('parent job %s already has children', pg_temp.jid('pc')),
    'split: a parent with children from create_child is refused (55000)');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, 10, 3)$$, pg_temp.child('s10', 1)),
    '22023', format('job %s is not a parent job', pg_temp.child('s10', 1)),
    'split: a job that is not a parent is refused (22023)');
SELECT throws_ok($$SELECT batchjob_split(-1, 10, 3)$$,
    '23503', 'parent job -1 does not exist',
    'split: a missing parent is refused (23503)');

INSERT INTO ids SELECT 'sx', job_id FROM batchjob_create_parent('{}', 'dave');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, 10, 0)$$, pg_temp.jid('sx')),
    '22023', 'batch_size must be positive: 0',
    'split: batch_size 0 is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, 10, -3)$$, pg_temp.jid('sx')),
    '22023', 'batch_size must be positive: -3',
    'split: a negative batch_size is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, -1, 3)$$, pg_temp.jid('sx')),
    '22023', 'total_records must not be negative: -1',
    'split: a negative total is refused (22023)');
SELECT throws_ok($$SELECT batchjob_split(NULL, 10, 3)$$,
    '22004', 'parent_job_id must not be null',
    'split: NULL parent_job_id is refused (22004)');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, NULL, 3)$$, pg_temp.jid('sx')),
    '22004', 'total_records must not be null',
    'split: NULL total_records is refused (22004)');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, 10, NULL)$$, pg_temp.jid('sx')),
    '22004', 'batch_size must not be null',
    'split: NULL batch_size is refused (22004)');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, 100001, 1)$$, pg_temp.jid('sx')),
    '22023',
    'splitting 100001 records into batches of 1 needs 100001 batches, more than the 100000 one split may create',
    'split: more batches than one split may create is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_split(%s, 214748364700001, 2147483647)$$,
           pg_temp.jid('sx')),
    '22023',
    'splitting 214748364700001 records into batches of 2147483647 needs 100001 batches, more than the 100000 one split may create',
    'split: the batch count is rounded up (22023)');
SELECT results_eq(
    $$SELECT total_records,
             (SELECT count(*) FROM batch_jobs c WHERE c.parent_job_id = p.job_id)
        FROM batch_jobs p WHERE job_id = pg_temp.jid('sx')$$,
    $$VALUES (NULL::bigint, 0::bigint)$$,
    'split: the refused splits left the parent without children or total');

/* ---- batchjob_children ---- */

INSERT INTO ids SELECT 'ord', job_id FROM batchjob_create_parent('{}', 'fred');
DO $$BEGIN
    PERFORM batchjob_create_child(pg_temp.jid('ord'), n, (n - 1) * 10, 10)
        FROM unnest(ARRAY[3, 1, 2]) AS n;
END$$;

SELECT results_eq(
    format($$SELECT batch_number, batch_offset FROM batchjob_children(%s)$$,
           pg_temp.jid('ord')),
    $$VALUES (1, 0::bigint), (2, 10::bigint), (3, 20::bigint)$$,
    'children: ordered by batch_number whatever the creation order');
SELECT is(
    (SELECT count(*) FROM batchjob_children(pg_temp.jid('s10'))),
    4::bigint, 'children: lists only that parent''s children');
SELECT is_empty(
    format($$SELECT * FROM batchjob_children(%s)$$, pg_temp.jid('sx')),
    'children: a parent without children has none');
SELECT throws_ok($$SELECT * FROM batchjob_children(-1)$$,
    '23503', 'parent job -1 does not exist',
    'children: a missing parent is refused (23503)');
SELECT throws_ok(
    format($$SELECT * FROM batchjob_children(%s)$$, pg_temp.child('ord', 1)),
    '22023', format('job %s is not a parent job', pg_temp.child('ord', 1)),
    'children: a job that is not a parent is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_children(NULL)$$,
    '22004', 'parent_job_id must not be null',
    'children: NULL is refused (22004)');

/* ---- batchjob_child_counts ---- */

-- 15 children: 1 PENDING, 2 PROCESSING, 3 COMPLETED, 4 FAILED, 5 CANCELLED
INSERT INTO ids SELECT 'cnt', job_id FROM batchjob_create_parent('{}', 'gina');
DO $$BEGIN PERFORM batchjob_split(pg_temp.jid('cnt'), 15, 1); END$$;
UPDATE batch_jobs SET status = CASE
        WHEN batch_number = 1 THEN 'PENDING'
        WHEN batch_number <= 3 THEN 'PROCESSING'
        WHEN batch_number <= 6 THEN 'COMPLETED'
        WHEN batch_number <= 10 THEN 'FAILED'
        ELSE 'CANCELLED' END
    WHERE parent_job_id = pg_temp.jid('cnt');

SELECT results_eq(
    format($$SELECT * FROM batchjob_child_counts(%s)$$, pg_temp.jid('cnt')),
    $$VALUES (1::bigint, 2::bigint, 3::bigint, 4::bigint, 5::bigint, 15::bigint)$$,
    'child_counts: pending, processing, completed, failed, cancelled and total');
SELECT results_eq(
    format($$SELECT * FROM batchjob_child_counts(%s)$$, pg_temp.jid('sx')),
    $$VALUES (0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
    'child_counts: all zero for a parent without children');
SELECT throws_ok($$SELECT * FROM batchjob_child_counts(-1)$$,
    '23503', 'parent job -1 does not exist',
    'child_counts: a missing parent is refused (23503)');
SELECT throws_ok(
    format($$SELECT * FROM batchjob_child_counts(%s)$$, pg_temp.child('cnt', 1)),
    '22023', format('job %s is not a parent job', pg_temp.child('cnt', 1)),
    'child_counts: a job that is not a parent is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_child_counts(NULL)$$,
    '22004', 'parent_job_id must not be null',
    'child_counts: NULL is refused (22004)');

/* ---- batchjob_refresh_parent ---- */

UPDATE batch_jobs SET processed_records = 1, success_count = 1
    WHERE parent_job_id = pg_temp.jid('cnt') AND batch_number BETWEEN 2 AND 6;
UPDATE batch_jobs SET processed_records = 1, error_count = 1
    WHERE parent_job_id = pg_temp.jid('cnt') AND batch_number = 7;
CREATE TEMP TABLE cnt_good AS SELECT pg_temp.figures('cnt') AS f;

SELECT is(pg_temp.figures('cnt'),
    '{"status": "PROCESSING", "error_details": null, "total_records": 15,
      "processed_records": 6, "success_count": 5, "error_count": 1,
      "pending": 1, "processing": 2, "completed": 3, "failed": 4,
      "cancelled": 5, "completed_at_set": false}'::jsonb,
    'refresh: (setup) the rollup kept the parent''s figures');

-- corrupt the stored counters: with no PENDING or PROCESSING child left in
-- them, the guard derives a finished status from them
UPDATE batch_jobs SET child_pending = 0, child_processing = 0,
        total_records = 1, processed_records = 777, success_count = 0,
        error_count = 99
    WHERE job_id = pg_temp.jid('cnt');
SELECT results_eq(
    $$SELECT status, error_details, completed_at IS NOT NULL
        FROM batch_jobs WHERE job_id = pg_temp.jid('cnt')$$,
    $$VALUES ('COMPLETED'::text, '4 out of 12 batch jobs failed'::text, true)$$,
    'refresh: (setup) the corrupted counters drive the stored status');

SELECT results_eq(
    format($$SELECT status, error_details, total_records, processed_records,
                    success_count, error_count, child_pending,
                    child_processing, child_completed, child_failed,
                    child_cancelled, completed_at IS NULL
               FROM batchjob_refresh_parent(%s)$$, pg_temp.jid('cnt')),
    $$VALUES ('PROCESSING'::text, NULL::text, 15::bigint, 6::bigint, 5::bigint,
              1::bigint, 1::bigint, 2::bigint, 3::bigint, 4::bigint, 5::bigint,
              true)$$,
    'refresh: returns the parent recomputed from its children');
SELECT is(pg_temp.figures('cnt'), (SELECT f FROM cnt_good),
    'refresh: the stored parent has exactly its figures from before the corruption');

-- corrupted figures on a split parent whose children are all PENDING; the
-- corruption makes the parent PROCESSING for a moment, so it has started,
-- and a parent that has started stays PROCESSING until it finishes
UPDATE batch_jobs SET total_records = 0, processed_records = 0,
        child_completed = 0, child_cancelled = 13
    WHERE job_id = pg_temp.jid('s10');
SELECT isnt((SELECT batchjob_refresh_parent(pg_temp.jid('s10'))), NULL,
    'refresh: returns the row of a parent with children');
SELECT is(pg_temp.figures('s10') - 'completed_at_set',
    '{"status": "PROCESSING", "error_details": null, "total_records": 10,
      "processed_records": 0, "success_count": 0, "error_count": 0,
      "pending": 4, "processing": 0, "completed": 0, "failed": 0,
      "cancelled": 0}'::jsonb,
    'refresh: restores total_records and the counters of a split parent');

CREATE TEMP TABLE sx_before AS
    SELECT to_jsonb(b) AS r FROM batch_jobs b WHERE job_id = pg_temp.jid('sx');
SELECT is((SELECT batchjob_refresh_parent(pg_temp.jid('sx'))), NULL,
    'refresh: NULL for a parent without children');
SELECT is(
    (SELECT to_jsonb(b) FROM batch_jobs b WHERE job_id = pg_temp.jid('sx')),
    (SELECT r FROM sx_before),
    'refresh: a parent without children is left as it was');

SELECT throws_ok($$SELECT batchjob_refresh_parent(-1)$$,
    '23503', 'parent job -1 does not exist',
    'refresh: a missing parent is refused (23503)');
SELECT throws_ok(
    format($$SELECT batchjob_refresh_parent(%s)$$, pg_temp.child('cnt', 1)),
    '22023', format('job %s is not a parent job', pg_temp.child('cnt', 1)),
    'refresh: a job that is not a parent is refused (22023)');
SELECT throws_ok($$SELECT batchjob_refresh_parent(NULL)$$,
    '22004', 'parent_job_id must not be null',
    'refresh: NULL is refused (22004)');

SELECT * FROM finish();
ROLLBACK;
