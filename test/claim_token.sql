/*
 * test/claim_token.sql - pgTAP: claims identify their holder (1.2).
 *
 * - A zombie worker: w1 claims a job (attempt 1), its lease expires, the
 *   reaper takes the job back and w1 (after a restart, say) or w2 claims it
 *   again (attempt 2).  Complete, fail, progress and heartbeat for attempt 1
 *   are refused (55000; heartbeat false) and change no row; attempt 2's
 *   calls work.
 * - A role with worker access only must name its worker (55000 with a
 *   hint); an admin may still finish any job without one.
 * - The array forms of complete and fail with a worker finish only the jobs
 *   that worker holds, all or nothing.
 *
 * Leases are expired by setting locked_until into the past, never by
 * waiting.  The table is emptied first, inside the test transaction, so
 * that claims take exactly the jobs made here.
 */
BEGIN;
SELECT plan(52);
\ir pgtap/fixture.sql

CREATE ROLE bjt_ct_worker;
CREATE ROLE bjt_ct_admin;
SELECT batchjob_grant('bjt_ct_worker', 'worker');
SELECT batchjob_grant('bjt_ct_admin', 'admin');

-- Every row of the table, as one value: what a refused call must not change.
CREATE FUNCTION pg_temp.everything() RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_agg(to_jsonb(j) ORDER BY j.job_id) FROM batch_jobs j $$;
CREATE TEMP TABLE snap (name text PRIMARY KEY, v jsonb);
GRANT ALL ON snap TO PUBLIC;
-- The SQLSTATE and detail of the error a statement raises.
CREATE FUNCTION pg_temp.error_of(text) RETURNS text LANGUAGE plpgsql
    AS $$DECLARE state text; detail text;
    BEGIN
        EXECUTE $1;
        RETURN 'no error';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL;
        RETURN state || ': ' || detail;
    END$$;
-- Expires a job's lease, as time would.
CREATE FUNCTION pg_temp.expire(text) RETURNS void LANGUAGE sql
    AS $$ UPDATE batch_jobs SET locked_until = clock_timestamp() - interval '1 minute'
           WHERE job_id = pg_temp.jid($1) $$;

-- parent P with children C1..C4 of 10 records; parent Q with D1..D4
INSERT INTO ids SELECT 'P', job_id FROM batchjob_create_parent('{}', 'ct');
INSERT INTO ids SELECT 'C' || batch_number, job_id
    FROM batchjob_split(pg_temp.jid('P'), 40, 10);
INSERT INTO ids SELECT 'Q', job_id FROM batchjob_create_parent('{}', 'ct');
INSERT INTO ids SELECT 'D' || batch_number, job_id
    FROM batchjob_split(pg_temp.jid('Q'), 40, 10);

/* ---- the signatures ---- */

SELECT has_function('public', 'batchjob_heartbeat', ARRAY['bigint', 'text', 'interval', 'integer'],
    'batchjob_heartbeat(job_id, worker, lease, attempt) exists');
SELECT has_function('public', 'batchjob_progress',
    ARRAY['bigint', 'bigint', 'bigint', 'bigint', 'text', 'integer'],
    'batchjob_progress(job_id, processed, succeeded, failed, worker, attempt) exists');
SELECT has_function('public', 'batchjob_complete', ARRAY['bigint', 'text', 'integer'],
    'batchjob_complete(job_id, worker, attempt) exists');
SELECT has_function('public', 'batchjob_fail', ARRAY['bigint', 'text', 'boolean', 'text', 'integer'],
    'batchjob_fail(job_id, error_details, retry, worker, attempt) exists');
SELECT has_function('public', 'batchjob_complete', ARRAY['bigint[]', 'text'],
    'batchjob_complete(job_ids, worker) exists');
SELECT has_function('public', 'batchjob_fail', ARRAY['bigint[]', 'text', 'boolean', 'text'],
    'batchjob_fail(job_ids, error_details, retry, worker) exists');
SELECT is(ARRAY(SELECT s FROM unnest(ARRAY[
              'batchjob_heartbeat(bigint, text, interval)',
              'batchjob_progress(bigint, bigint, bigint, bigint, text)',
              'batchjob_complete(bigint, text)',
              'batchjob_fail(bigint, text, boolean, text)',
              'batchjob_complete(bigint[])',
              'batchjob_fail(bigint[], text, boolean)']) s
           WHERE to_regprocedure(s) IS NOT NULL),
    ARRAY[]::text[], 'the 1.1 signatures are gone, so no short call is ambiguous');

/* ---- a zombie worker: the same name, a later attempt ---- */

SELECT results_eq($$SELECT job_id, attempts, locked_by FROM batchjob_claim('w1')$$,
    format($$VALUES (%s::bigint, 1, 'w1'::text)$$, pg_temp.jid('C1')),
    'w1 claims C1: attempt 1');
SELECT pg_temp.expire('C1');
SELECT is(batchjob_reap(), 1::bigint, 'its lease expires and the reaper takes C1 back');
SELECT results_eq($$SELECT job_id, attempts, locked_by FROM batchjob_claim('w1')$$,
    format($$VALUES (%s::bigint, 2, 'w1'::text)$$, pg_temp.jid('C1')),
    'w1, restarted, claims C1 again: attempt 2');

INSERT INTO snap VALUES ('zombie', pg_temp.everything());
SELECT throws_ok(format($$SELECT batchjob_complete(%s, 'w1', 1)$$, pg_temp.jid('C1')),
    '55000', format('job %s is not held by worker "w1" in attempt 1', pg_temp.jid('C1')),
    'attempt 1 cannot complete attempt 2 (55000)');
SELECT is(pg_temp.error_of(format($$SELECT batchjob_complete(%s, 'w1', 1)$$, pg_temp.jid('C1'))),
    '55000: It is held by worker "w1" in attempt 2.',
    '... and the detail says who holds it now');
SELECT throws_ok(format($$SELECT batchjob_fail(%s, 'late', true, 'w1', 1)$$, pg_temp.jid('C1')),
    '55000', format('job %s is not held by worker "w1" in attempt 1', pg_temp.jid('C1')),
    'attempt 1 cannot fail attempt 2 (55000)');
SELECT throws_ok(format($$SELECT batchjob_progress(%s, 5, 5, 0, 'w1', 1)$$, pg_temp.jid('C1')),
    '55000', format('job %s is not held by worker "w1" in attempt 1', pg_temp.jid('C1')),
    'attempt 1 cannot report progress on attempt 2 (55000)');
SELECT is(batchjob_heartbeat(pg_temp.jid('C1'), 'w1', '1 hour', 1), false,
    'attempt 1''s heartbeat returns false');
SELECT throws_ok(format($$SELECT batchjob_complete(%s, attempt => 1)$$, pg_temp.jid('C1')),
    '55000', format('job %s is not in attempt 1', pg_temp.jid('C1')),
    'the attempt alone is checked too (55000)');
SELECT is(pg_temp.everything(), (SELECT v FROM snap WHERE name = 'zombie'),
    'the refused calls changed no row at all (the lease neither)');

SELECT is(batchjob_heartbeat(pg_temp.jid('C1'), 'w1', '10 minutes', 2), true,
    'attempt 2''s heartbeat extends the lease');
SELECT is((batchjob_progress(pg_temp.jid('C1'), 10, 9, 1, 'w1', 2)).processed_records, 10::bigint,
    'attempt 2 reports progress');
SELECT is((batchjob_complete(pg_temp.jid('C1'), 'w1', 2)).status, 'COMPLETED',
    'attempt 2 completes C1');
SELECT throws_ok(format($$SELECT batchjob_complete(%s, 'w1', 1)$$, pg_temp.jid('C1')),
    '55000', format('job %s is COMPLETED, not PROCESSING', pg_temp.jid('C1')),
    'a finished job is refused as before (55000)');
SELECT is(batchjob_heartbeat(pg_temp.jid('C1'), 'w1', '1 hour', 2), false,
    'a heartbeat for a finished job returns false, attempt or not');

/* ---- a zombie worker: another worker holds the job now ---- */

SELECT is((SELECT attempts FROM batchjob_claim('w1')), 1, 'w1 claims C2: attempt 1');
SELECT pg_temp.expire('C2');
SELECT is(batchjob_reap(), 1::bigint, 'its lease expires and C2 is reaped');
SELECT results_eq($$SELECT job_id, attempts, locked_by FROM batchjob_claim('w2')$$,
    format($$VALUES (%s::bigint, 2, 'w2'::text)$$, pg_temp.jid('C2')),
    'w2 claims C2: attempt 2');
INSERT INTO snap VALUES ('w2 holds', pg_temp.everything());
SELECT throws_ok(format($$SELECT batchjob_complete(%s, 'w1', 1)$$, pg_temp.jid('C2')),
    '55000', format('job %s is not held by worker "w1" in attempt 1', pg_temp.jid('C2')),
    'w1 cannot complete the job w2 holds (55000)');
SELECT is(pg_temp.error_of(format($$SELECT batchjob_fail(%s, 'x', true, 'w1')$$, pg_temp.jid('C2'))),
    '55000: It is held by worker "w2" in attempt 2.',
    'nor fail it without the attempt; the detail names w2 and its attempt');
SELECT throws_ok(format($$SELECT batchjob_complete(%s, 'w2', 1)$$, pg_temp.jid('C2')),
    '55000', format('job %s is not held by worker "w2" in attempt 1', pg_temp.jid('C2')),
    'the right worker with the wrong attempt is refused too (55000)');
SELECT is(pg_temp.everything(), (SELECT v FROM snap WHERE name = 'w2 holds'),
    '... and nothing changed');
SELECT results_eq(
    format($$SELECT status, attempts FROM batchjob_fail(%s, 'bad row', false, 'w2', 2)$$,
           pg_temp.jid('C2')),
    $$VALUES ('FAILED'::text, 2)$$,
    'w2 fails its own attempt');

/* ---- a role with worker access only must name its worker ---- */

SET ROLE bjt_ct_worker;
SELECT results_eq($$SELECT job_id, attempts FROM batchjob_claim('wr')$$,
    format($$VALUES (%s::bigint, 1)$$, pg_temp.jid('C3')),
    'worker role: claims C3 as wr');
INSERT INTO snap VALUES ('unnamed', pg_temp.everything());
SELECT throws_ok(format('SELECT batchjob_complete(%s)', pg_temp.jid('C3')),
    '55000', format('no worker named to complete job %s', pg_temp.jid('C3')),
    'worker role: complete without a worker name is refused (55000)');
SELECT throws_ok(format($$SELECT batchjob_fail(%s, 'x')$$, pg_temp.jid('C3')),
    '55000', format('no worker named to fail job %s', pg_temp.jid('C3')),
    'worker role: fail without a worker name is refused (55000)');
SELECT throws_ok(format('SELECT batchjob_progress(%s, 1, 1, 0)', pg_temp.jid('C3')),
    '55000', format('no worker named to report progress on job %s', pg_temp.jid('C3')),
    'worker role: progress without a worker name is refused (55000)');
SELECT throws_ok(format('SELECT batchjob_complete(%s, attempt => 1)', pg_temp.jid('C3')),
    '55000', format('no worker named to complete job %s', pg_temp.jid('C3')),
    'worker role: an attempt without a worker name is refused too (55000)');
SELECT throws_ok(format('SELECT batchjob_complete(ARRAY[%s])', pg_temp.jid('C3')),
    '55000', 'no worker named to complete jobs',
    'worker role: complete(job_ids) without a worker name is refused (55000)');
SELECT throws_ok(format($$SELECT batchjob_fail(ARRAY[%s], 'x')$$, pg_temp.jid('C3')),
    '55000', 'no worker named to fail jobs',
    'worker role: fail(job_ids) without a worker name is refused (55000)');
SELECT is(pg_temp.everything(), (SELECT v FROM snap WHERE name = 'unnamed'),
    'worker role: the refused calls changed no row');
SELECT is(batchjob_heartbeat(pg_temp.jid('C3'), 'wr', '1 hour', 7), false,
    'worker role: a heartbeat for another attempt returns false');
SELECT is((batchjob_progress(pg_temp.jid('C3'), 4, 4, 0, 'wr', 1)).processed_records, 4::bigint,
    'worker role: progress with its worker name and attempt works');
RESET ROLE;

SET ROLE bjt_ct_admin;
SELECT is((batchjob_complete(pg_temp.jid('C3'))).status, 'COMPLETED',
    'admin: completes the job wr holds without naming a worker');
RESET ROLE;

/* ---- the array forms with a worker ---- */

SET ROLE bjt_ct_worker;
SELECT set_eq($$SELECT job_id FROM batchjob_claim('wa', 2)$$,
    format('VALUES (%s::bigint), (%s)', pg_temp.jid('C4'), pg_temp.jid('D1')),
    'worker role: wa claims C4 and D1');
SELECT is((SELECT job_id FROM batchjob_claim('wb')), pg_temp.jid('D2'),
    'worker role: wb claims D2');
SELECT is(batchjob_complete(ARRAY[pg_temp.jid('C4'), pg_temp.jid('D1')], 'wa'), 2::bigint,
    'complete(job_ids, worker) completes the jobs wa holds');
INSERT INTO snap VALUES ('wb holds D2', pg_temp.everything());
SELECT throws_ok(format($$SELECT batchjob_complete(ARRAY[%s], 'wa')$$, pg_temp.jid('D2')),
    '55000', format('job %s is not held by worker "wa"', pg_temp.jid('D2')),
    'complete(job_ids, worker) refuses a job another worker holds (55000)');
SELECT is((SELECT job_id FROM batchjob_claim('wa')), pg_temp.jid('D3'),
    'worker role: wa claims D3');
INSERT INTO snap VALUES ('wa holds D3', pg_temp.everything());
SELECT throws_ok(
    format($$SELECT batchjob_fail(ARRAY[%s, %s], 'x', false, 'wa')$$,
           pg_temp.jid('D3'), pg_temp.jid('D2')),
    '55000', format('job %s is not held by worker "wa"', pg_temp.jid('D2')),
    'fail(job_ids, worker) with one job of another worker fails as a whole (55000)');
SELECT is(pg_temp.everything(), (SELECT v FROM snap WHERE name = 'wa holds D3'),
    '... and fails none of them');
SELECT is(batchjob_fail(ARRAY[pg_temp.jid('D3')], 'x', false, 'wa'), 1::bigint,
    'fail(job_ids, worker) fails the job wa holds');
RESET ROLE;

SET ROLE bjt_ct_admin;
SELECT is(batchjob_complete(ARRAY[pg_temp.jid('D2')]), 1::bigint,
    'admin: complete(job_ids) without a worker finishes the job wb holds');
RESET ROLE;

SELECT results_eq(
    $$SELECT status, count(*) FROM batch_jobs WHERE NOT is_parent GROUP BY status ORDER BY status$$,
    $$VALUES ('COMPLETED'::text, 5::bigint), ('FAILED', 2), ('PENDING', 1)$$,
    'in the end: C1, C3, C4, D1, D2 completed; C2, D3 failed; D4 untouched');
SELECT is_empty('SELECT * FROM batchjob_verify()', 'batchjob_verify finds nothing wrong');

SELECT * FROM finish();
ROLLBACK;
