/*
 * test/followup_parents.sql - pgTAP: follow-up parents (1.2),
 * batchjob_create_followup(..., is_parent => true): a parent that waits
 * can be split and given children (nested parents too), which the claim
 * passes over until it starts; its start lets every job below it go in
 * the same transaction; its cancel cancels them; batchjob_verify() finds
 * a job left held back below a parent that no longer waits.
 *
 * Waited-for jobs are finished with plain SQL (the rollup and the guard
 * treat it as they treat the worker functions).
 */
BEGIN;
SELECT plan(44);
\ir pgtap/fixture.sql

DELETE FROM batch_job_followups;
-- every rollup folds at once, so stored parent rows are exact
SET LOCAL batchjob.defer_when_busy = off;

-- held back: PENDING with run_at infinity
CREATE FUNCTION pg_temp.held(bigint) RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT status = 'PENDING' AND run_at = 'infinity'
            FROM batch_jobs WHERE job_id = $1 $$;
-- every job below a named parent, at any depth
CREATE FUNCTION pg_temp.below(text) RETURNS SETOF batch_jobs LANGUAGE sql STABLE
    AS $$ WITH RECURSIVE t AS (
              SELECT * FROM batch_jobs WHERE parent_job_id = pg_temp.jid($1)
              UNION ALL
              SELECT c.* FROM batch_jobs c JOIN t ON c.parent_job_id = t.job_id)
          SELECT * FROM t $$;
CREATE FUNCTION pg_temp.plain(name text) RETURNS void LANGUAGE sql
    AS $$ WITH j AS (INSERT INTO batch_jobs (status, criteria, created_by)
                     VALUES ('PENDING', '{}', 'tenant_a') RETURNING job_id)
          INSERT INTO ids SELECT $1, job_id FROM j $$;
CREATE FUNCTION pg_temp.fin(name text, status text) RETURNS void LANGUAGE sql
    AS $$ UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid($1);
          UPDATE batch_jobs SET status = $2 WHERE job_id = pg_temp.jid($1) $$;
CREATE FUNCTION pg_temp.follow_parent(name text, after_names text[], after text DEFAULT 'success')
RETURNS void LANGUAGE sql
    AS $$ INSERT INTO ids SELECT $1, job_id FROM batchjob_create_followup(
              ARRAY(SELECT pg_temp.jid(n) FROM unnest($2) n), '{"step": "next"}',
              'tenant_a', $3, is_parent => true) $$;
CREATE FUNCTION pg_temp.nested(name text, parent text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO ids SELECT $1, job_id FROM batchjob_create_parent(
              '{}', 'tenant_a', 0, NULL, 'continue', pg_temp.jid($2)) $$;

/* ---- a follow-up parent waits; what is made below it is held back ---- */

SELECT pg_temp.plain('a');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('a');
SELECT pg_temp.follow_parent('f', '{a}');
SELECT is((SELECT (is_parent, status, run_at = 'infinity')::text FROM batch_jobs
            WHERE job_id = pg_temp.jid('f')),
          '(t,PENDING,t)', 'create: with is_parent, a PENDING parent with run_at infinity');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('f'), 5, 2)), 3::bigint,
          'split while it waits: the children are made');
SELECT ok((SELECT bool_and(pg_temp.held(job_id)) FROM pg_temp.below('f')),
          'split while it waits: every child is held back (run_at infinity)');
SELECT pg_temp.nested('g', 'f');
SELECT ok(pg_temp.held(pg_temp.jid('g')), 'a parent nested below it is held back too');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('g'), 2, 1)), 2::bigint,
          'split of the nested parent while the follow-up waits');
SELECT ok((SELECT bool_and(pg_temp.held(job_id)) FROM pg_temp.below('g')),
          '... its children are held back too');
INSERT INTO ids SELECT 'fc', job_id FROM batchjob_create_child(pg_temp.jid('f'), 9, 100, 1);
SELECT ok(pg_temp.held(pg_temp.jid('fc')), 'create_child while it waits: the child is held back');
SELECT is((SELECT (status, child_pending, total_records)::text FROM batch_jobs
            WHERE job_id = pg_temp.jid('f')),
          '(PENDING,5,8)', 'the waiting parent stays PENDING and counts its children pending');
SELECT is((SELECT count(*) FROM batchjob_claim('w', 100)), 0::bigint,
          'the claim takes none of the jobs below a waiting parent');
SELECT ok(batchjob_next_pending() IS NULL, 'nor are they the next pending job');
SELECT is((SELECT count(*) FROM batchjob_verify()), 0::bigint,
          'verify: nothing wrong while it waits');

/* ---- its start lets every job below it go, in the same transaction ---- */

SELECT pg_temp.fin('a', 'COMPLETED');
SELECT ok((SELECT status = 'PENDING' AND run_at <= clock_timestamp() FROM batch_jobs
            WHERE job_id = pg_temp.jid('f')), 'start: the follow-up parent starts');
SELECT is((SELECT count(*) FROM pg_temp.below('f') WHERE run_at = 'infinity'), 0::bigint,
          'start: nothing below it is held back any more');
SELECT is((SELECT count(*) FROM pg_temp.below('f')
            WHERE status = 'PENDING' AND run_at <= clock_timestamp()), 7::bigint,
          'start: every job below it is PENDING and due');
SELECT is((SELECT array_agg(job_id ORDER BY job_id) FROM batchjob_claim('w', 100)),
          (SELECT array_agg(job_id ORDER BY job_id) FROM pg_temp.below('f') WHERE NOT is_parent),
          'start: the claim takes every leaf below it');
SELECT is((SELECT count(*) FROM batchjob_verify()), 0::bigint,
          'verify: nothing wrong after the start');

/* ---- a split after the start is not held back ---- */

SELECT pg_temp.plain('b');
SELECT pg_temp.follow_parent('f2', '{b}', 'complete');
SELECT pg_temp.fin('b', 'FAILED');
SELECT ok((SELECT run_at <> 'infinity' FROM batch_jobs WHERE job_id = pg_temp.jid('f2')),
          'after complete: a follow-up parent starts whatever the outcome');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('f2'), 2, 1)), 2::bigint,
          'split after the start: the children are made');
SELECT is((SELECT count(*) FROM pg_temp.below('f2') WHERE run_at = 'infinity'), 0::bigint,
          'split after the start: no child is held back');
SELECT pg_temp.nested('g2', 'f2');
SELECT ok((SELECT run_at <> 'infinity' FROM batch_jobs WHERE job_id = pg_temp.jid('g2')),
          'a parent nested below a started one is not held back');
SELECT is((SELECT count(*) FROM batchjob_claim('w', 100)), 2::bigint,
          'the children of a started follow-up parent are claimed');

/* ---- a follow-up parent that is cancelled cancels what is below it ---- */

SELECT pg_temp.plain('c');
SELECT pg_temp.follow_parent('f3', '{c}');
SELECT NULL FROM batchjob_split(pg_temp.jid('f3'), 4, 2);
SELECT pg_temp.nested('g3', 'f3');
SELECT NULL FROM batchjob_split(pg_temp.jid('g3'), 2, 1);
SELECT pg_temp.fin('c', 'FAILED');
SELECT is((SELECT array_agg(DISTINCT status) FROM pg_temp.below('f3')), '{CANCELLED}',
          'cancel: every job below it is CANCELLED');
SELECT is(pg_temp.st('f3'), 'CANCELLED', 'cancel: the follow-up parent follows its children: CANCELLED');
SELECT is(pg_temp.st('g3'), 'CANCELLED', 'cancel: the nested parent follows its children too');
SELECT is((SELECT error_details FROM batch_jobs WHERE job_id = pg_temp.child('f3', 1)),
          format('follow-up %s was cancelled: job %s, which it waited for, ended FAILED',
                 pg_temp.jid('f3'), pg_temp.jid('c')),
          'cancel: each cancelled job below it says why');
SELECT is((SELECT count(*) FROM batch_jobs WHERE run_at = 'infinity' AND
             (job_id = pg_temp.jid('f3') OR job_id IN (SELECT job_id FROM pg_temp.below('f3')))),
          0::bigint, 'cancel: nothing is left held back');
SELECT is((SELECT count(*) FROM batchjob_verify()), 0::bigint,
          'verify: nothing wrong after the cancel');

SELECT pg_temp.plain('c2');
SELECT pg_temp.follow_parent('f4', '{c2}');
SELECT pg_temp.fin('c2', 'CANCELLED');
SELECT is((SELECT (status, error_details)::text FROM batch_jobs WHERE job_id = pg_temp.jid('f4')),
          format('(CANCELLED,"job %s, which it waited for, ended CANCELLED")', pg_temp.jid('c2')),
          'cancel: a follow-up parent without children is cancelled as a plain follow-up, with the outcome');

/* ---- fan-in ---- */

SELECT pg_temp.plain('d');
SELECT pg_temp.plain('e');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id IN (pg_temp.jid('d'), pg_temp.jid('e'));
SELECT pg_temp.follow_parent('f5', '{d,e}');
SELECT NULL FROM batchjob_split(pg_temp.jid('f5'), 3, 1);
SELECT pg_temp.fin('d', 'COMPLETED');
SELECT ok(pg_temp.held(pg_temp.jid('f5')), 'fan-in: one of two finished, the parent still waits');
SELECT ok((SELECT bool_and(pg_temp.held(job_id)) FROM pg_temp.below('f5')),
          'fan-in: its children are still held back');
SELECT is((SELECT count(*) FROM batchjob_claim('w', 100)), 0::bigint,
          'fan-in: nothing below it is claimed yet');
SELECT pg_temp.fin('e', 'COMPLETED');
SELECT is((SELECT count(*) FROM pg_temp.below('f5') WHERE run_at = 'infinity'), 0::bigint,
          'fan-in: both finished, its children go');
SELECT is((SELECT count(*) FROM batchjob_claim('w', 100)), 3::bigint,
          'fan-in: and are claimed');

/* ---- a follow-up parent of a follow-up parent (a chain) ---- */

SELECT pg_temp.plain('q');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('q');
SELECT pg_temp.follow_parent('ch1', '{q}');
SELECT NULL FROM batchjob_split(pg_temp.jid('ch1'), 1, 1);
SELECT pg_temp.follow_parent('ch2', '{ch1}');
SELECT NULL FROM batchjob_split(pg_temp.jid('ch2'), 1, 1);
SELECT pg_temp.fin('q', 'COMPLETED');
SELECT ok(NOT pg_temp.held(pg_temp.child('ch1', 1)) AND pg_temp.held(pg_temp.child('ch2', 1)),
          'chain: the first parent''s child goes, the second''s still waits');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.child('ch1', 1);
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = pg_temp.child('ch1', 1);
SELECT is(pg_temp.st('ch1'), 'COMPLETED', 'chain: the first parent completes by its child');
SELECT ok(NOT pg_temp.held(pg_temp.child('ch2', 1)), 'chain: then the second parent''s child goes');

/* ---- already finished: it starts at once ---- */

SELECT pg_temp.plain('h');
SELECT pg_temp.fin('h', 'COMPLETED');
SELECT pg_temp.follow_parent('f6', '{h}');
SELECT ok((SELECT is_parent AND run_at <> 'infinity' FROM batch_jobs WHERE job_id = pg_temp.jid('f6')),
          'after a job already finished: the follow-up parent starts at once');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('f6'), 1, 1) WHERE run_at <> 'infinity'),
          1::bigint, '... and its split is not held back');

/* ---- errors and what stays as it was ---- */

SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[pg_temp.jid('h')], '{}', 'tenant_a', is_parent => NULL)$$,
    '22004', 'is_parent must not be null', 'is_parent NULL (22004)');
SELECT pg_temp.plain('k');
INSERT INTO ids SELECT 'fk', job_id FROM batchjob_create_followup(ARRAY[pg_temp.jid('k')], '{}', 'tenant_a');
SELECT throws_ok($$SELECT batchjob_split(pg_temp.jid('fk'), 2, 1)$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('fk')),
    'a plain follow-up (is_parent false, the default) is still not a parent (22023)');
SELECT is((SELECT is_parent FROM batch_jobs WHERE job_id = pg_temp.jid('fk')), false,
          'is_parent defaults to false');
SELECT pg_temp.plain('m');
INSERT INTO ids SELECT 'pm', job_id FROM batchjob_create_parent('{}', 'tenant_a', 0, NULL);
UPDATE batch_jobs SET run_at = now() + interval '1 hour' WHERE job_id = pg_temp.jid('pm');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('pm'), 2, 1) WHERE run_at = 'infinity'),
          0::bigint, 'a parent that is not held back (run_at not infinity) holds nothing back');

/* ---- a parent a user parked with run_at infinity holds nothing back ---- */

INSERT INTO ids SELECT 'pp', job_id FROM batchjob_create_parent('{}', 'tenant_a', 0, NULL);
UPDATE batch_jobs SET run_at = 'infinity' WHERE job_id = pg_temp.jid('pp');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('pp'), 2, 1) WHERE run_at = 'infinity'),
          0::bigint, 'a parked parent that is no follow-up holds nothing back');
SELECT is((SELECT count(*) FROM batchjob_verify()), 0::bigint,
          'verify: nothing wrong after all of the above');

SELECT * FROM finish();
ROLLBACK;
