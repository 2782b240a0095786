/*
 * test/status_rules.sql - pgTAP: how a parent's status, error_details,
 * started_at and completed_at follow from its children's statuses.
 */
BEGIN;
SELECT plan(37);
\ir pgtap/fixture.sql

-- A new parent named $1 split into $2 batches of one record.
CREATE PROCEDURE pg_temp.family(text, integer) LANGUAGE plpgsql
    AS $$BEGIN
        INSERT INTO ids SELECT $1, job_id
            FROM batchjob_create_parent('{}', 'status_rules');
        PERFORM batchjob_split(pg_temp.jid($1), $2, 1);
    END$$;
-- Sets the statuses of a named parent's children, batch i getting $2[i].
CREATE PROCEDURE pg_temp.set_children(text, text[]) LANGUAGE sql
    AS $$ UPDATE batch_jobs SET status = ($2)[batch_number]
          WHERE parent_job_id = pg_temp.jid($1)
            AND status IS DISTINCT FROM ($2)[batch_number] $$;
-- What the status rules are about, for a named parent.
CREATE FUNCTION pg_temp.state(text) RETURNS TABLE
    (status text, error_details text, started boolean, finished boolean)
    LANGUAGE sql
    AS $$ SELECT status, error_details, started_at IS NOT NULL,
                 completed_at IS NOT NULL
          FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;

/* ---- a parent without children keeps its own status ---- */

INSERT INTO ids SELECT 'lone', job_id FROM batchjob_create_parent('{}', 'x');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('lone');
SELECT results_eq($$SELECT * FROM pg_temp.state('lone')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'no children: a parent takes the status it is given');
UPDATE batch_jobs SET status = 'FAILED', error_details = 'own reason'
    WHERE job_id = pg_temp.jid('lone');
SELECT results_eq($$SELECT * FROM pg_temp.state('lone')$$,
    $$VALUES ('FAILED'::text, 'own reason'::text, true, true)$$,
    'no children: a parent keeps its own status and error_details');

/* ---- one family through its life ---- */

CALL pg_temp.family('a', 3);
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('PENDING'::text, NULL::text, false, false)$$,
    'all children PENDING: the parent is PENDING and not started');

CALL pg_temp.set_children('a', '{PROCESSING,PENDING,PENDING}');
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'one child PROCESSING: the parent is PROCESSING and started');

CALL pg_temp.set_children('a', '{COMPLETED,PENDING,PENDING}');
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'one child COMPLETED, the rest PENDING: the parent is PROCESSING');

-- the reference design finished the parent here
CALL pg_temp.set_children('a', '{COMPLETED,FAILED,PROCESSING}');
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'a failed child while a sibling still runs: the parent is PROCESSING, not finished');
CALL pg_temp.set_children('a', '{COMPLETED,FAILED,PENDING}');
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'a failed child while a sibling waits: the parent is PROCESSING, not finished');

CALL pg_temp.set_children('a', '{COMPLETED,FAILED,COMPLETED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('COMPLETED'::text, '1 out of 3 batch jobs failed'::text, true, true)$$,
    'all finished, some failed: COMPLETED with "1 out of 3 batch jobs failed"');

-- a FAILED child put back to PENDING reopens the parent
CALL pg_temp.set_children('a', '{COMPLETED,PENDING,COMPLETED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'a failed child back to PENDING: the parent is PROCESSING again, completed_at and error_details cleared');

CALL pg_temp.set_children('a', '{COMPLETED,COMPLETED,COMPLETED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('COMPLETED'::text, NULL::text, true, true)$$,
    'all children COMPLETED: the parent is COMPLETED without error_details');
SELECT is(
    (SELECT completed_at FROM batch_jobs WHERE job_id = pg_temp.jid('a')),
    now(), 'completed_at is the finishing transaction''s time');

-- a new child reopens a finished parent
SELECT lives_ok($$SELECT batchjob_create_child(pg_temp.jid('a'), 4, 3, 1)$$,
    'a child can be added to a COMPLETED parent');
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'a new PENDING child: the COMPLETED parent is PROCESSING again');
DELETE FROM batch_jobs WHERE parent_job_id = pg_temp.jid('a') AND batch_number = 4;
SELECT results_eq($$SELECT * FROM pg_temp.state('a')$$,
    $$VALUES ('COMPLETED'::text, NULL::text, true, true)$$,
    'deleting the only unfinished child: the parent is COMPLETED again');

/* ---- each finished mix ---- */

CALL pg_temp.family('cx', 3);
CALL pg_temp.set_children('cx', '{COMPLETED,CANCELLED,COMPLETED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('cx')$$,
    $$VALUES ('COMPLETED'::text, NULL::text, true, true)$$,
    'COMPLETED and CANCELLED children: the parent is COMPLETED');

CALL pg_temp.family('xx', 2);
CALL pg_temp.set_children('xx', '{CANCELLED,CANCELLED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('xx')$$,
    $$VALUES ('CANCELLED'::text, NULL::text, true, true)$$,
    'all children CANCELLED: the parent is CANCELLED');

CALL pg_temp.family('fx', 3);
CALL pg_temp.set_children('fx', '{FAILED,CANCELLED,FAILED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('fx')$$,
    $$VALUES ('COMPLETED'::text, '2 out of 3 batch jobs failed'::text, true, true)$$,
    'FAILED and CANCELLED children: COMPLETED with "2 out of 3 batch jobs failed"');

CALL pg_temp.family('ff', 3);
CALL pg_temp.set_children('ff', '{FAILED,FAILED,FAILED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('ff')$$,
    $$VALUES ('FAILED'::text, '3 out of 3 batch jobs failed'::text, true, true)$$,
    'all children FAILED: the parent is FAILED with "3 out of 3 batch jobs failed"');
CALL pg_temp.set_children('ff', '{FAILED,PENDING,FAILED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('ff')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'one child of a FAILED parent retried: the parent is PROCESSING again');
CALL pg_temp.set_children('ff', '{PENDING,PENDING,PENDING}');
SELECT results_eq($$SELECT * FROM pg_temp.state('ff')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'every child retried: the parent has started, so it stays PROCESSING, started_at kept');

CALL pg_temp.family('ten', 10);
CALL pg_temp.set_children('ten',
    '{FAILED,FAILED,COMPLETED,FAILED,FAILED,FAILED,COMPLETED,FAILED,FAILED,CANCELLED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('ten')$$,
    $$VALUES ('COMPLETED'::text, '7 out of 10 batch jobs failed'::text, true, true)$$,
    'error_details counts the failed children over all children: "7 out of 10 batch jobs failed"');
CALL pg_temp.set_children('ten',
    '{FAILED,FAILED,COMPLETED,FAILED,FAILED,COMPLETED,COMPLETED,FAILED,FAILED,CANCELLED}');
SELECT is((SELECT error_details FROM batch_jobs WHERE job_id = pg_temp.jid('ten')),
    '6 out of 10 batch jobs failed',
    'error_details follows a change between two finished statuses');

CALL pg_temp.family('one', 1);
CALL pg_temp.set_children('one', '{FAILED}');
SELECT results_eq($$SELECT * FROM pg_temp.state('one')$$,
    $$VALUES ('FAILED'::text, '1 out of 1 batch jobs failed'::text, true, true)$$,
    'a single FAILED child: the parent is FAILED');

/* ---- the status of a parent with children cannot be set by hand ---- */

CALL pg_temp.family('h', 2);
CALL pg_temp.set_children('h', '{PROCESSING,PENDING}');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = pg_temp.jid('h')$$,
    '55000',
    format('job %s cannot be set to COMPLETED: its status follows its children',
           pg_temp.jid('h')),
    'a parent with running children cannot be set COMPLETED (55000)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = pg_temp.jid('h')$$,
    '55000', NULL,
    'a parent with running children cannot be set CANCELLED (55000)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'PENDING' WHERE job_id = pg_temp.jid('h')$$,
    '55000', NULL,
    'a PROCESSING parent cannot be set back to PENDING by hand (55000)');
SELECT results_eq($$SELECT * FROM pg_temp.state('h')$$,
    $$VALUES ('PROCESSING'::text, NULL::text, true, false)$$,
    'the refused updates left the parent PROCESSING');
SELECT lives_ok(
    $$UPDATE batch_jobs SET status = 'PROCESSING', priority = 9
       WHERE job_id = pg_temp.jid('h')$$,
    'setting a parent to the status its children give is accepted');
UPDATE batch_jobs SET error_details = 'by hand' WHERE job_id = pg_temp.jid('h');
SELECT is((SELECT error_details FROM batch_jobs WHERE job_id = pg_temp.jid('h')),
    NULL, 'error_details of a running parent with children is derived (NULL), not taken by hand');

CALL pg_temp.set_children('h', '{COMPLETED,FAILED}');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'FAILED' WHERE job_id = pg_temp.jid('h')$$,
    '55000',
    format('job %s cannot be set to FAILED: its status follows its children',
           pg_temp.jid('h')),
    'a parent whose children say COMPLETED cannot be set FAILED (55000)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('h')$$,
    '55000', NULL,
    'a finished parent with children cannot be reopened by hand (55000)');
SELECT results_eq($$SELECT * FROM pg_temp.state('h')$$,
    $$VALUES ('COMPLETED'::text, '1 out of 2 batch jobs failed'::text, true, true)$$,
    'the refused updates left the parent COMPLETED with its error_details');

/* ---- a statement that changes children of several parents ---- */

CALL pg_temp.family('m1', 2);
CALL pg_temp.family('m2', 2);
UPDATE batch_jobs SET status = CASE parent_job_id
        WHEN pg_temp.jid('m1') THEN 'CANCELLED' ELSE 'FAILED' END
    WHERE parent_job_id IN (pg_temp.jid('m1'), pg_temp.jid('m2'));
SELECT results_eq(
    $$SELECT status, error_details FROM batch_jobs
       WHERE job_id IN (pg_temp.jid('m1'), pg_temp.jid('m2')) ORDER BY job_id$$,
    $$VALUES ('CANCELLED'::text, NULL::text),
             ('FAILED'::text, '2 out of 2 batch jobs failed'::text)$$,
    'one statement finishing the children of two parents: each parent gets its own status');

/* ---- child_counts follows the same statuses ---- */

SELECT results_eq(
    $$SELECT * FROM batchjob_child_counts(pg_temp.jid('ten'))$$,
    $$VALUES (0::bigint, 0::bigint, 3::bigint, 6::bigint, 1::bigint, 10::bigint)$$,
    'child_counts agrees with the children''s statuses');

/* ---- a nested parent counts as one child of its own parent ---- */

INSERT INTO ids SELECT 'top', job_id FROM batchjob_create_parent('{}', 'x');
INSERT INTO batch_jobs (is_parent, parent_job_id, batch_number, created_by)
    VALUES (true, pg_temp.jid('top'), 1, 'x'),
           (false, pg_temp.jid('top'), 2, 'x');
INSERT INTO ids SELECT 'mid', job_id FROM batch_jobs
    WHERE parent_job_id = pg_temp.jid('top') AND batch_number = 1;
SELECT lives_ok($$SELECT batchjob_split(pg_temp.jid('mid'), 2, 1)$$,
    'a parent that is itself a child can be split');
CALL pg_temp.set_children('mid', '{FAILED,FAILED}');
UPDATE batch_jobs SET status = 'COMPLETED'
    WHERE parent_job_id = pg_temp.jid('top') AND batch_number = 2;
SELECT results_eq(
    $$SELECT status, error_details FROM batch_jobs
       WHERE job_id IN (pg_temp.jid('top'), pg_temp.jid('mid')) ORDER BY job_id$$,
    $$VALUES ('COMPLETED'::text, '1 out of 2 batch jobs failed'::text),
             ('FAILED'::text, '2 out of 2 batch jobs failed'::text)$$,
    'a FAILED nested parent counts as one failed child of the top parent');
CALL pg_temp.set_children('mid', '{FAILED,PENDING}');
SELECT results_eq(
    $$SELECT status, completed_at IS NULL FROM batch_jobs
       WHERE job_id IN (pg_temp.jid('top'), pg_temp.jid('mid')) ORDER BY job_id$$,
    $$VALUES ('PROCESSING'::text, true), ('PROCESSING'::text, true)$$,
    'retrying a grandchild reopens both the nested parent and the top parent');

SELECT * FROM finish();
ROLLBACK;
