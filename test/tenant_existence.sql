/*
 * test/tenant_existence.sql - pgTAP: with batchjob.tenant_isolation on, a
 * job of another tenant behaves exactly like a job that does not exist.
 *
 * For every function that takes a job id, the outcome of a call on one of
 * alice's jobs, made by bob (a submitter) or by a worker serving only bob,
 * is compared with the outcome of the same call on an id that names no job:
 * the same SQLSTATE, message, detail and hint (the id itself aside), or
 * the same result.  Otherwise a tenant could learn which ids exist.
 */
BEGIN;
SELECT plan(30);
\ir pgtap/fixture.sql

CREATE ROLE bje_alice;
CREATE ROLE bje_bob;
CREATE ROLE bje_worker_b;
CREATE ROLE bje_worker_a;
SELECT batchjob_grant('bje_alice', 'submitter');
SELECT batchjob_grant('bje_bob', 'submitter');
SELECT batchjob_grant('bje_worker_b', 'worker', ARRAY['bje_bob']);
SELECT batchjob_grant('bje_worker_a', 'worker', ARRAY['bje_alice']);

/*
 * What a statement does with job id `id` put in for %s: its first value,
 * or its error as SQLSTATE: message (detail) [hint], with the id written #
 * so that two ids can be compared.
 */
CREATE FUNCTION pg_temp.outcome(tpl text, id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r text; st text; msg text; det text; hnt text;
BEGIN
    EXECUTE format(tpl, id) INTO r;
    RETURN 'result: ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN regexp_replace(format('%s: %s (%s) [%s]', st, msg, det, hnt),
                          '(?<![0-9])' || id || '(?![0-9])', '#', 'g');
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.outcome(text, bigint) TO PUBLIC;

-- The check: the call on alice's job and on the missing id end alike
-- (and, so that the comparison means something, in an error or false).
CREATE FUNCTION pg_temp.alike(tpl text, foreign_name text) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN f IS NOT DISTINCT FROM m THEN 'alike: ' || f
                ELSE format('differ: %s / missing: %s', f, m) END
      FROM (SELECT pg_temp.outcome(tpl, pg_temp.jid(foreign_name)) AS f,
                   pg_temp.outcome(tpl, pg_temp.jid('gone')) AS m) x
$$;
GRANT EXECUTE ON FUNCTION pg_temp.alike(text, text) TO PUBLIC;

-- alice's jobs first, then an id that is gone, then bob's: so alice's and
-- the missing id both sort before bob's in the array forms
SET ROLE bje_alice;
INSERT INTO ids SELECT 'A', job_id FROM batchjob_create_parent('{}', 'bje_alice');
INSERT INTO ids SELECT 'A' || batch_number, job_id
  FROM batchjob_split(pg_temp.jid('A'), 30, 10);
RESET ROLE;
WITH j AS (INSERT INTO batch_jobs (created_by, total_records) VALUES ('nobody', 1)
           RETURNING job_id)
    INSERT INTO ids SELECT 'gone', job_id FROM j;
DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('gone');
SET ROLE bje_bob;
INSERT INTO ids SELECT 'B', job_id FROM batchjob_create_parent('{}', 'bje_bob');
INSERT INTO ids SELECT 'B' || batch_number, job_id
  FROM batchjob_split(pg_temp.jid('B'), 20, 10);
RESET ROLE;

SET LOCAL batchjob.tenant_isolation = on;

-- alice's worker holds A1 and has failed A2; bob's worker holds B1
SET ROLE bje_worker_a;
SELECT is((SELECT count(*) FROM batchjob_claim('wa', 2)), 2::bigint, 'alice''s worker claims A1 and A2');
SELECT is((batchjob_fail(pg_temp.jid('A2'), 'boom', false, 'wa')).status, 'FAILED', 'and fails A2 for good');
RESET ROLE;
SET ROLE bje_worker_b;
SELECT is((SELECT job_id FROM batchjob_claim('wb')), pg_temp.jid('B1'), 'bob''s worker claims B1');
RESET ROLE;

CREATE TEMP TABLE before AS SELECT * FROM batch_jobs;

/* ---- a submitter: bob ---- */

SET ROLE bje_bob;
SELECT is(pg_temp.alike('SELECT batchjob_cancel(%s)', 'A'),
    'alike: P0002: job # does not exist () []',
    'cancel: alice''s parent is a job that does not exist');
SELECT is(pg_temp.alike('SELECT batchjob_cancel(%s)', 'A3'),
    'alike: P0002: job # does not exist () []',
    'cancel: alice''s PENDING child too');
SELECT is(pg_temp.alike('SELECT batchjob_retry(%s)', 'A2'),
    'alike: P0002: job # does not exist () []',
    'retry: alice''s FAILED job');
SELECT is(pg_temp.alike('SELECT batchjob_retry(%s)', 'A'),
    'alike: P0002: job # does not exist () []',
    'retry: alice''s parent');
SELECT is(pg_temp.alike('SELECT count(*) FROM batchjob_children(%s)', 'A'),
    'alike: 23503: parent job # does not exist () []',
    'children: alice''s parent');
SELECT is(pg_temp.alike('SELECT total FROM batchjob_child_counts(%s)', 'A'),
    'alike: 23503: parent job # does not exist () []',
    'child_counts: alice''s parent');
SELECT is(pg_temp.alike('SELECT job_id FROM batchjob_create_child(%s, 9, 900, 5)', 'A'),
    'alike: 23503: parent job # does not exist () []',
    'create_child: under alice''s parent');
SELECT is(pg_temp.alike('SELECT job_id FROM batchjob_create_child(%s, 1, 0, 5)', 'A'),
    'alike: 23503: parent job # does not exist () []',
    'create_child: under alice''s parent, with a batch number it already has');
SELECT is(pg_temp.alike('SELECT count(*) FROM batchjob_split(%s, 10, 5)', 'A'),
    'alike: 23503: parent job # does not exist () []',
    'split: alice''s parent (which has children already)');
SELECT is(pg_temp.alike('SELECT count(*) FROM batchjob_split(%s, 10, 5)', 'A1'),
    'alike: 23503: parent job # does not exist () []',
    'split: alice''s child (which is not a parent)');
SELECT is(pg_temp.alike($$SELECT job_id FROM batchjob_create_parent('{}', 'bje_bob', parent_job_id => %s)$$, 'A'),
    'alike: 23503: parent job # does not exist () []',
    'create_parent: under alice''s parent');
RESET ROLE;

/* ---- a worker serving bob ---- */

SET ROLE bje_worker_b;
SELECT is(pg_temp.alike($$SELECT batchjob_heartbeat(%s, 'wb')$$, 'A1'),
    'alike: result: false', 'heartbeat: alice''s PROCESSING job answers false');
SELECT is(pg_temp.alike($$SELECT batchjob_heartbeat(%s, 'wa', attempt => 1)$$, 'A1'),
    'alike: result: false', 'heartbeat: even naming the claim that holds it');
SELECT is(pg_temp.alike($$SELECT (batchjob_progress(%s, 1, 1, 0, 'wa')).status$$, 'A1'),
    'alike: P0002: job # does not exist () []',
    'progress: alice''s PROCESSING job, naming its worker');
-- errors that come before the job is looked up come alike too
SELECT matches(pg_temp.alike($$SELECT (batchjob_progress(%s, 1, 1, 0)).status$$, 'A1'),
    '^alike: 55000: no worker named ',
    'progress: naming no worker is refused first, for both alike');
SELECT matches(pg_temp.alike($$SELECT (batchjob_progress(%s, 5, 9, 9, 'wa')).status$$, 'A1'),
    '^alike: 22023: ',
    'progress: figures that do not add up are refused first, for both alike');
SELECT is(pg_temp.alike($$SELECT (batchjob_complete(%s, 'wa')).status$$, 'A1'),
    'alike: P0002: job # does not exist () []',
    'complete: alice''s PROCESSING job');
SELECT is(pg_temp.alike($$SELECT (batchjob_complete(%s, 'wa', 1)).status$$, 'A1'),
    'alike: P0002: job # does not exist () []',
    'complete: naming worker and attempt');
SELECT is(pg_temp.alike($$SELECT (batchjob_complete(%s, 'wb')).status$$, 'A'),
    'alike: P0002: job # does not exist () []',
    'complete: alice''s parent');
SELECT is(pg_temp.alike($$SELECT (batchjob_fail(%s, 'x', true, 'wa')).status$$, 'A1'),
    'alike: P0002: job # does not exist () []',
    'fail: alice''s PROCESSING job');
SELECT is(pg_temp.alike($$SELECT batchjob_complete(ARRAY[%s], 'wa')$$, 'A1'),
    'alike: P0002: job # does not exist () []',
    'complete(job_ids): alice''s job alone');
SELECT is(pg_temp.alike(format($$SELECT batchjob_complete(ARRAY[%s, %%s], 'wb')$$, pg_temp.jid('B1')), 'A1'),
    'alike: P0002: job # does not exist () []',
    'complete(job_ids): alice''s job beside bob''s B1');
SELECT is(pg_temp.alike(format($$SELECT batchjob_fail(ARRAY[%%s, %s], 'x', true, 'wb')$$, pg_temp.jid('B1')), 'A1'),
    'alike: P0002: job # does not exist () []',
    'fail(job_ids): alice''s job beside bob''s B1');
SELECT is(pg_temp.alike($$SELECT batchjob_complete(ARRAY[%1$s, %1$s], 'wb')$$, 'A1'),
    'alike: P0002: job # does not exist () []',
    'complete(job_ids): the same id twice');
SELECT is(pg_temp.alike('SELECT count(*) FROM batchjob_children(%s)', 'A'),
    'alike: 23503: parent job # does not exist () []',
    'children: as the worker');
RESET ROLE;

SELECT is((SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid('B1')), 'PROCESSING',
    'B1, in the refused batch completions, is still PROCESSING');
SELECT set_eq('SELECT * FROM batch_jobs', 'SELECT * FROM before',
    'none of the calls changed any job');

SELECT * FROM finish();
ROLLBACK;
