/*
 * test/lifecycle.sql - pgTAP: the 1.1 worker lifecycle of batchjob.
 * batchjob_claim, batchjob_heartbeat, batchjob_progress, batchjob_complete,
 * batchjob_fail (one job and many), batchjob_reap, batchjob_retry,
 * batchjob_cancel, and the batch_job_progress view.  The fail_fast policy
 * and nested parents are in test/policy_nesting.sql.
 *
 * batchjob_claim() takes whatever is claimable in the whole table, so the
 * file starts from an empty table (inside its own transaction, rolled back
 * at the end) and keeps every PENDING job it is not about to claim "parked"
 * with run_at = 'infinity'.
 *
 * Within a transaction now() stands still while clock_timestamp() moves:
 * the functions measure leases, backoff and run_at against the clock, and
 * the row guard stamps started_at and completed_at with the transaction
 * time.  Timed checks bracket the call between two clock readings.
 */
BEGIN;
SELECT plan(159);
\ir pgtap/fixture.sql

-- Clock readings, by name.
CREATE TEMP TABLE marks (name text PRIMARY KEY, at timestamptz NOT NULL);
CREATE FUNCTION pg_temp.mark(text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO marks VALUES ($1, clock_timestamp())
          ON CONFLICT (name) DO UPDATE SET at = excluded.at $$;
CREATE FUNCTION pg_temp.at(text) RETURNS timestamptz LANGUAGE plpgsql STABLE
    AS $$DECLARE t timestamptz;
    BEGIN
        SELECT at INTO STRICT t FROM marks WHERE name = $1;
        RETURN t;
    END$$;
-- A named job's row.
CREATE FUNCTION pg_temp.job(text) RETURNS batch_jobs LANGUAGE plpgsql STABLE
    AS $$DECLARE r batch_jobs;
    BEGIN
        SELECT * INTO STRICT r FROM batch_jobs WHERE job_id = pg_temp.jid($1);
        RETURN r;
    END$$;
-- A named parent's figures, as stored.
CREATE FUNCTION pg_temp.figures(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_build_object(
              'status', status, 'error_details', error_details,
              'total_records', total_records,
              'processed_records', processed_records,
              'success_count', success_count, 'error_count', error_count,
              'pending', child_pending, 'processing', child_processing,
              'completed', child_completed, 'failed', child_failed,
              'cancelled', child_cancelled)
          FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;
-- A parent and n children of 10 records each, named <name>1 .. <name>n;
-- all parked.
CREATE FUNCTION pg_temp.family(name text, n integer,
                               policy text DEFAULT 'continue')
    RETURNS void LANGUAGE plpgsql
    AS $$BEGIN
        INSERT INTO ids SELECT name, job_id
            FROM batchjob_create_parent(jsonb_build_object('t', name), 'tap',
                                        on_child_failure => policy);
        INSERT INTO ids SELECT name || b, job_id
            FROM generate_series(1, n) AS b,
                 batchjob_create_child(pg_temp.jid(name), b, (b - 1) * 10, 10);
        PERFORM pg_temp.park();
    END$$;
-- Keeps every PENDING leaf but the one named from being claimed.
CREATE FUNCTION pg_temp.park(but text DEFAULT NULL) RETURNS void LANGUAGE sql
    AS $$ UPDATE batch_jobs SET run_at = 'infinity'
           WHERE status = 'PENDING' AND NOT is_parent
             AND run_at <> 'infinity'
             AND job_id IS DISTINCT FROM
                 (SELECT id FROM ids WHERE name = but) $$;
-- Claims exactly the named job for worker, through batchjob_claim(), and
-- raises if anything else was claimed.
CREATE FUNCTION pg_temp.take(name text, worker text,
                             lease interval DEFAULT '5 minutes')
    RETURNS void LANGUAGE plpgsql
    AS $$DECLARE got bigint[];
    BEGIN
        PERFORM pg_temp.park();
        UPDATE batch_jobs SET run_at = now() - interval '1 second'
         WHERE job_id = pg_temp.jid(name);
        SELECT array_agg(job_id) INTO got FROM batchjob_claim(worker, 1, lease);
        IF got IS DISTINCT FROM ARRAY[pg_temp.jid(name)] THEN
            RAISE EXCEPTION 'take(%): claimed % instead', name, got;
        END IF;
    END$$;
-- Setup steps that must work (their own behaviour is asserted elsewhere).
CREATE FUNCTION pg_temp.broke(name text, why text) RETURNS void LANGUAGE sql
    AS $$ SELECT NULL FROM batchjob_fail(pg_temp.jid(name), why, false) $$;

/* ---- batchjob_claim ---- */

-- parent P: c1 (prio 0), c2 (prio 5, 2 min old), c3 (prio 5, 3 min old),
-- c4 (prio 0, same created_at as c1, higher job_id), c5 (prio 9, run_at in
-- an hour), c6 (prio 9, CANCELLED); Q: a childless parent of priority 100.
INSERT INTO ids SELECT 'P', job_id
    FROM batchjob_create_parent('{"t": "claim"}', 'tap', 0, NULL);
INSERT INTO ids SELECT 'c' || b, job_id
    FROM (VALUES (1, 0), (2, 5), (3, 5), (4, 0), (5, 9), (6, 9)) AS v(b, prio),
         batchjob_create_child(pg_temp.jid('P'), b, (b - 1) * 10, 10, NULL, prio);
INSERT INTO ids SELECT 'Q', job_id
    FROM batchjob_create_parent('{"t": "childless"}', 'tap', 100, 10);
UPDATE batch_jobs SET created_at = now() - interval '2 minutes'
 WHERE job_id = pg_temp.jid('c2');
UPDATE batch_jobs SET created_at = now() - interval '3 minutes'
 WHERE job_id = pg_temp.jid('c3');
-- rewrite c1 so that it no longer comes first in the heap
UPDATE batch_jobs SET criteria = '{"touched": true}'
 WHERE job_id = pg_temp.jid('c1');
UPDATE batch_jobs SET run_at = clock_timestamp() + interval '1 hour'
 WHERE job_id = pg_temp.jid('c5');
SELECT is(batchjob_cancel(pg_temp.jid('c6')), 1::bigint,
    'cancel: a PENDING leaf is cancelled and counted (setup for claim)');

SELECT pg_temp.mark('claim1 before');
SELECT results_eq(
    $$SELECT job_id, status, locked_by, attempts, started_at = now()
        FROM batchjob_claim('w1')$$,
    format($$VALUES (%s::bigint, 'PROCESSING'::text, 'w1'::text, 1, true)$$,
           pg_temp.jid('c3')),
    'claim: takes the highest priority, oldest job first (c3 over the newer c2); PROCESSING, locked_by, attempts 1, started_at');
SELECT pg_temp.mark('claim1 after');
SELECT ok((pg_temp.job('c3')).locked_until
              BETWEEN pg_temp.at('claim1 before') + interval '5 minutes'
                  AND pg_temp.at('claim1 after') + interval '5 minutes',
    'claim: the default lease ends 5 minutes after the claim (clock time)');
SELECT is((pg_temp.job('c3')).completed_at, NULL,
    'claim: a claimed job has no completed_at');

SELECT set_eq(
    $$SELECT job_id FROM batchjob_claim('w1', 2)$$,
    format('VALUES (%s::bigint), (%s)', pg_temp.jid('c2'), pg_temp.jid('c1')),
    'claim: max_jobs 2 takes c2 (priority 5) then c1 (priority 0, created_at tie broken by lower job_id)');

SELECT pg_temp.mark('claim3 before');
SELECT results_eq(
    $$SELECT job_id, locked_by FROM batchjob_claim('w2', 10, '30 seconds')$$,
    format($$VALUES (%s::bigint, 'w2'::text)$$, pg_temp.jid('c4')),
    'claim: only c4 is left: not the future run_at, the CANCELLED job or the parents');
SELECT pg_temp.mark('claim3 after');
SELECT ok((pg_temp.job('c4')).locked_until
              BETWEEN pg_temp.at('claim3 before') + interval '30 seconds'
                  AND pg_temp.at('claim3 after') + interval '30 seconds',
    'claim: an explicit lease of 30 seconds is applied');
SELECT is_empty($$SELECT * FROM batchjob_claim('w2', 10)$$,
    'claim: returns no row when nothing is claimable');

SELECT results_eq(
    $$SELECT job_id, status, locked_by, attempts FROM batch_jobs
       WHERE job_id IN (SELECT id FROM ids WHERE name IN ('c5', 'c6', 'Q'))
       ORDER BY job_id$$,
    format($$VALUES (%s::bigint, 'PENDING'::text, NULL::text, 0),
                    (%s, 'CANCELLED', NULL, 0), (%s, 'PENDING', NULL, 0)$$,
           pg_temp.jid('c5'), pg_temp.jid('c6'), pg_temp.jid('Q')),
    'claim: the skipped jobs are untouched');
SELECT is(pg_temp.figures('P'),
    '{"status": "PROCESSING", "error_details": null, "total_records": 60,
      "processed_records": 0, "success_count": 0, "error_count": 0,
      "pending": 1, "processing": 4, "completed": 0, "failed": 0,
      "cancelled": 1}'::jsonb,
    'claim: the parent''s counts move from PENDING to PROCESSING through the rollup');
SELECT is((pg_temp.job('P')).started_at, now(),
    'claim: the parent is started by its first claimed child');

UPDATE batch_jobs SET run_at = clock_timestamp() - interval '1 second'
 WHERE job_id = pg_temp.jid('c5');
SELECT results_eq($$SELECT job_id FROM batchjob_claim('w3')$$,
    format('VALUES (%s::bigint)', pg_temp.jid('c5')),
    'claim: a job becomes claimable once its run_at has passed');

SELECT throws_ok($$SELECT * FROM batchjob_claim(NULL)$$,
    '22004', 'worker must not be null',
    'claim: NULL worker is refused (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', NULL)$$,
    '22004', 'max_jobs must not be null',
    'claim: NULL max_jobs is refused (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1, NULL)$$,
    '22004', 'lease must not be null',
    'claim: NULL lease is refused (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 0)$$,
    '22023', 'max_jobs must be between 1 and 1000: 0',
    'claim: max_jobs 0 is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', -3)$$,
    '22023', 'max_jobs must be between 1 and 1000: -3',
    'claim: a negative max_jobs is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1, '0 seconds')$$,
    '22023', 'lease must be a positive interval: 00:00:00',
    'claim: a zero lease is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1, '-1 minute')$$,
    '22023', 'lease must be a positive interval: -00:01:00',
    'claim: a negative lease is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1, '1 day -24 hours')$$,
    '22023', NULL,
    'claim: a lease whose parts add up to zero is refused (22023)');

/* ---- batchjob_heartbeat ---- */

SELECT pg_temp.mark('hb before');
SELECT is(batchjob_heartbeat(pg_temp.jid('c3'), 'w1', '10 minutes'), true,
    'heartbeat: true for the worker holding the job');
SELECT pg_temp.mark('hb after');
SELECT ok((pg_temp.job('c3')).locked_until
              BETWEEN pg_temp.at('hb before') + interval '10 minutes'
                  AND pg_temp.at('hb after') + interval '10 minutes',
    'heartbeat: the lease now ends 10 minutes from the heartbeat');
SELECT pg_temp.mark('hb2 before');
SELECT is(batchjob_heartbeat(pg_temp.jid('c4'), 'w2'), true,
    'heartbeat: the lease defaults to 5 minutes');
SELECT pg_temp.mark('hb2 after');
SELECT ok((pg_temp.job('c4')).locked_until
              BETWEEN pg_temp.at('hb2 before') + interval '5 minutes'
                  AND pg_temp.at('hb2 after') + interval '5 minutes',
    'heartbeat: the default lease ends 5 minutes from the heartbeat');

CREATE TEMP TABLE lease_c3 AS SELECT locked_until FROM batch_jobs
 WHERE job_id = pg_temp.jid('c3');
SELECT is(batchjob_heartbeat(pg_temp.jid('c3'), 'w2', '1 hour'), false,
    'heartbeat: false for another worker');
SELECT results_eq(
    format('SELECT locked_by, locked_until FROM batch_jobs WHERE job_id = %s',
           pg_temp.jid('c3')),
    $$SELECT 'w1'::text, locked_until FROM lease_c3$$,
    'heartbeat: another worker''s heartbeat leaves the lease alone');
SELECT is(batchjob_heartbeat(pg_temp.jid('c6'), 'w1'), false,
    'heartbeat: false for a job that is not PROCESSING');
SELECT is(batchjob_heartbeat(pg_temp.jid('P'), 'w1'), false,
    'heartbeat: false for a parent');
SELECT is(batchjob_heartbeat(-42, 'w1'), false,
    'heartbeat: false for a missing job');
SELECT throws_ok($$SELECT batchjob_heartbeat(NULL, 'w1')$$,
    '22004', 'job_id must not be null',
    'heartbeat: NULL job_id is refused (22004)');
SELECT throws_ok(
    format($$SELECT batchjob_heartbeat(%s, NULL)$$, pg_temp.jid('c3')),
    '22004', 'worker must not be null',
    'heartbeat: NULL worker is refused (22004)');
SELECT throws_ok(
    format($$SELECT batchjob_heartbeat(%s, 'w1', '0')$$, pg_temp.jid('c3')),
    '22023', NULL,
    'heartbeat: a zero lease is refused (22023)');

/* ---- batchjob_progress ---- */

SELECT results_eq(
    format($$SELECT status, processed_records, success_count, error_count,
                    total_records
               FROM batchjob_progress(%s, 3, 2, 1)$$, pg_temp.jid('c3')),
    $$VALUES ('PROCESSING'::text, 3::bigint, 2::bigint, 1::bigint, 10::bigint)$$,
    'progress: returns the job with its new figures, still PROCESSING');
SELECT lives_ok(
    format('SELECT batchjob_progress(%s, 7, 7, 0)', pg_temp.jid('c1')),
    'progress: a second job reports');
SELECT is(pg_temp.figures('P') - 'status' - 'pending' - 'processing'
              - 'completed' - 'failed' - 'cancelled' - 'error_details',
    '{"total_records": 60, "processed_records": 10, "success_count": 9,
      "error_count": 1}'::jsonb,
    'progress: the parent holds the exact sums');
SELECT lives_ok(
    format('SELECT batchjob_progress(%s, 3, 2, 1)', pg_temp.jid('c3')),
    'progress: the same report again is accepted');
SELECT is(pg_temp.figures('P') - 'status' - 'pending' - 'processing'
              - 'completed' - 'failed' - 'cancelled' - 'error_details',
    '{"total_records": 60, "processed_records": 10, "success_count": 9,
      "error_count": 1}'::jsonb,
    'progress: figures are absolute, so a resent report changes nothing');
SELECT lives_ok(
    format('SELECT batchjob_progress(%s, 10, 8, 2)', pg_temp.jid('c3')),
    'progress: a later report replaces the earlier one');
SELECT is(pg_temp.figures('P') - 'status' - 'pending' - 'processing'
              - 'completed' - 'failed' - 'cancelled' - 'error_details',
    '{"total_records": 60, "processed_records": 17, "success_count": 15,
      "error_count": 2}'::jsonb,
    'progress: the parent moves by the difference (3 -> 10 records)');

INSERT INTO ids SELECT 'idle', job_id
    FROM batchjob_create_child(pg_temp.jid('P'), 100, 600, 10);
SELECT pg_temp.park();
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, 1, 1, 0)', pg_temp.jid('idle')),
    '55000', format('job %s is PENDING, not PROCESSING', pg_temp.jid('idle')),
    'progress: a PENDING job is refused (55000)');
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, 1, 1, 0)', pg_temp.jid('c6')),
    '55000', format('job %s is CANCELLED, not PROCESSING', pg_temp.jid('c6')),
    'progress: a CANCELLED job is refused (55000)');
SELECT throws_ok('SELECT batchjob_progress(-42, 1, 1, 0)',
    'P0002', 'job -42 does not exist',
    'progress: a missing job is refused (P0002)');
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, 1, 1, 0)', pg_temp.jid('P')),
    '22023', format('job %s is a parent job', pg_temp.jid('P')),
    'progress: a parent is refused (22023)');
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, -1, 0, 0)', pg_temp.jid('c4')),
    '23514', NULL,
    'progress: a negative processed count is refused (23514)');
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, 1, -1, 0)', pg_temp.jid('c4')),
    '23514', NULL,
    'progress: a negative succeeded count is refused (23514)');
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, 1, 0, -1)', pg_temp.jid('c4')),
    '23514', NULL,
    'progress: a negative failed count is refused (23514)');
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, 11, 11, 0)', pg_temp.jid('c4')),
    '23514', NULL,
    'progress: processed beyond the job''s total_records is refused (23514)');
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, NULL, 0, 0)', pg_temp.jid('c4')),
    '22004', 'processed must not be null',
    'progress: NULL processed is refused (22004)');
SELECT results_eq(
    $$SELECT processed_records, success_count, error_count FROM batch_jobs
       WHERE job_id = pg_temp.jid('c4')$$,
    $$VALUES (0::bigint, 0::bigint, 0::bigint)$$,
    'progress: the refused reports changed nothing');

/* ---- batchjob_complete ---- */

SELECT results_eq(
    format($$SELECT status, locked_by, locked_until, completed_at = now(),
                    processed_records
               FROM batchjob_complete(%s)$$, pg_temp.jid('c3')),
    $$VALUES ('COMPLETED'::text, NULL::text, NULL::timestamptz, true, 10::bigint)$$,
    'complete: PROCESSING -> COMPLETED, lease cleared, completed_at set, progress kept');
SELECT is((pg_temp.job('c3')).status, 'COMPLETED',
    'complete: the change is stored');
SELECT is(pg_temp.figures('P') -> 'completed', '1'::jsonb,
    'complete: the parent counts the completed child');
SELECT is(batchjob_heartbeat(pg_temp.jid('c3'), 'w1'), false,
    'complete: the former holder''s heartbeat now returns false');
SELECT throws_ok(
    format('SELECT batchjob_complete(%s)', pg_temp.jid('c3')),
    '55000', format('job %s is COMPLETED, not PROCESSING', pg_temp.jid('c3')),
    'complete: a COMPLETED job is refused (55000)');
SELECT throws_ok(
    format('SELECT batchjob_complete(%s)', pg_temp.jid('idle')),
    '55000', format('job %s is PENDING, not PROCESSING', pg_temp.jid('idle')),
    'complete: a PENDING job is refused (55000)');
SELECT throws_ok(
    format('SELECT batchjob_complete(%s)', pg_temp.jid('c6')),
    '55000', format('job %s is CANCELLED, not PROCESSING', pg_temp.jid('c6')),
    'complete: a CANCELLED job is refused (55000)');
SELECT throws_ok('SELECT batchjob_complete(-42)',
    'P0002', 'job -42 does not exist',
    'complete: a missing job is refused (P0002)');
SELECT throws_ok(
    format('SELECT batchjob_complete(%s)', pg_temp.jid('P')),
    '22023', format('job %s is a parent job', pg_temp.jid('P')),
    'complete: a parent is refused (22023)');
SELECT throws_ok('SELECT batchjob_complete(NULL::bigint)',
    '22004', 'job_id must not be null',
    'complete: NULL job_id is refused (22004)');

/* ---- batchjob_fail, one job ---- */

SELECT pg_temp.family('F', 3);
SELECT pg_temp.take('F1', 'wf');
SELECT pg_temp.mark('fail1 before');
SELECT results_eq(
    format($$SELECT status, error_details, attempts, locked_by, locked_until
               FROM batchjob_fail(%s, 'boom 1')$$, pg_temp.jid('F1')),
    $$VALUES ('PENDING'::text, 'boom 1'::text, 1, NULL::text, NULL::timestamptz)$$,
    'fail: attempt 1 of 3 goes back to PENDING, keeps error_details and drops the lease');
SELECT pg_temp.mark('fail1 after');
SELECT ok((pg_temp.job('F1')).run_at
              >= pg_temp.at('fail1 before') + interval '0.5 seconds'
          AND (pg_temp.job('F1')).run_at
              < pg_temp.at('fail1 after') + interval '1.5 seconds',
    'fail: the retry after attempt 1 waits 1 s x [0.5, 1.5)');
SELECT ok((pg_temp.job('F1')).run_at > clock_timestamp(),
    'fail: the retried job''s run_at is in the future');
SELECT is_empty($$SELECT * FROM batchjob_claim('wf')$$,
    'fail: a job in its backoff is not claimable');
SELECT is(pg_temp.figures('F') - 'total_records' - 'processed_records'
              - 'success_count' - 'error_count',
    '{"status": "PROCESSING", "error_details": null, "pending": 3,
      "processing": 0, "completed": 0, "failed": 0, "cancelled": 0}'::jsonb,
    'fail: the parent counts the retried child as PENDING again');

SELECT pg_temp.take('F1', 'wf');
SELECT is((pg_temp.job('F1')).attempts, 2,
    'fail: the next claim counts attempt 2');
SELECT pg_temp.mark('fail2 before');
SELECT is((batchjob_fail(pg_temp.jid('F1'), 'boom 2')).status, 'PENDING',
    'fail: attempt 2 of 3 goes back to PENDING');
SELECT pg_temp.mark('fail2 after');
SELECT ok((pg_temp.job('F1')).run_at
              >= pg_temp.at('fail2 before') + interval '1 second'
          AND (pg_temp.job('F1')).run_at
              < pg_temp.at('fail2 after') + interval '3 seconds',
    'fail: the retry after attempt 2 waits 2 s x [0.5, 1.5)');

SELECT pg_temp.take('F1', 'wf');
SELECT is((pg_temp.job('F1')).attempts, 3, 'fail: the third claim counts attempt 3');
CREATE TEMP TABLE runat_f1 AS SELECT run_at FROM batch_jobs
 WHERE job_id = pg_temp.jid('F1');
SELECT results_eq(
    format($$SELECT status, error_details, attempts, completed_at = now(),
                    locked_by
               FROM batchjob_fail(%s, 'boom 3')$$, pg_temp.jid('F1')),
    $$VALUES ('FAILED'::text, 'boom 3'::text, 3, true, NULL::text)$$,
    'fail: at max_attempts the job is FAILED for good');
SELECT is((pg_temp.job('F1')).run_at, (SELECT run_at FROM runat_f1),
    'fail: a final failure leaves run_at alone');

SELECT pg_temp.take('F2', 'wf');
SELECT results_eq(
    format($$SELECT status, error_details, attempts
               FROM batchjob_fail(%s, 'fatal', false)$$, pg_temp.jid('F2')),
    $$VALUES ('FAILED'::text, 'fatal'::text, 1)$$,
    'fail: retry => false fails the job at once, attempts left or not');

UPDATE batch_jobs SET max_attempts = 1 WHERE job_id = pg_temp.jid('F3');
SELECT pg_temp.take('F3', 'wf');
SELECT is((batchjob_fail(pg_temp.jid('F3'), 'once')).status, 'FAILED',
    'fail: a job whose max_attempts is 1 fails on its first failure');
SELECT is(pg_temp.figures('F') - 'total_records' - 'processed_records'
              - 'success_count' - 'error_count',
    '{"status": "FAILED", "error_details": "3 out of 3 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 0, "failed": 3,
      "cancelled": 0}'::jsonb,
    'fail: a parent whose children all failed is FAILED with the 1.0 message');

-- the backoff is capped at an hour (still with its random factor)
INSERT INTO ids SELECT 'late', job_id
    FROM batchjob_create_child(pg_temp.jid('P'), 101, 610, 10);
UPDATE batch_jobs SET attempts = 19, max_attempts = 30
 WHERE job_id = pg_temp.jid('late');
SELECT pg_temp.take('late', 'wf');
SELECT pg_temp.mark('late before');
SELECT is((batchjob_fail(pg_temp.jid('late'), 'again')).status, 'PENDING',
    'fail: attempt 20 of 30 goes back to PENDING');
SELECT pg_temp.mark('late after');
SELECT ok((pg_temp.job('late')).run_at
              >= pg_temp.at('late before') + interval '1800 seconds'
          AND (pg_temp.job('late')).run_at
              < pg_temp.at('late after') + interval '5400 seconds',
    'fail: the backoff is capped at 3600 s x [0.5, 1.5)');

SELECT throws_ok(
    format($$SELECT batchjob_fail(%s, 'x')$$, pg_temp.jid('idle')),
    '55000', format('job %s is PENDING, not PROCESSING', pg_temp.jid('idle')),
    'fail: a PENDING job is refused (55000)');
SELECT throws_ok(
    format($$SELECT batchjob_fail(%s, 'x')$$, pg_temp.jid('F2')),
    '55000', format('job %s is FAILED, not PROCESSING', pg_temp.jid('F2')),
    'fail: a FAILED job is refused (55000)');
SELECT throws_ok(
    format($$SELECT batchjob_fail(%s, 'x')$$, pg_temp.jid('c3')),
    '55000', format('job %s is COMPLETED, not PROCESSING', pg_temp.jid('c3')),
    'fail: a COMPLETED job is refused (55000)');
SELECT throws_ok($$SELECT batchjob_fail(-42, 'x')$$,
    'P0002', 'job -42 does not exist',
    'fail: a missing job is refused (P0002)');
SELECT throws_ok(
    format($$SELECT batchjob_fail(%s, 'x')$$, pg_temp.jid('P')),
    '22023', format('job %s is a parent job', pg_temp.jid('P')),
    'fail: a parent is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_fail(%s, 'x', NULL)$$, pg_temp.jid('c4')),
    '22004', 'retry must not be null',
    'fail: NULL retry is refused (22004)');
SELECT throws_ok($$SELECT batchjob_fail(NULL::bigint, 'x')$$,
    '22004', 'job_id must not be null',
    'fail: NULL job_id is refused (22004)');

/* ---- batchjob_complete(bigint[]) and batchjob_fail(bigint[], ...) ---- */

SELECT pg_temp.family('M', 6);
SELECT pg_temp.take('M' || b, 'wm') FROM generate_series(1, 6) AS b;

SELECT is(batchjob_complete(ARRAY[pg_temp.jid('M1'), pg_temp.jid('M1'), NULL,
                                  pg_temp.jid('M2')]),
    2::bigint,
    'complete(array): returns how many changed; duplicates and NULLs are ignored');
SELECT results_eq(
    $$SELECT status, locked_by FROM batch_jobs
       WHERE job_id IN (pg_temp.jid('M1'), pg_temp.jid('M2'))$$,
    $$VALUES ('COMPLETED'::text, NULL::text), ('COMPLETED', NULL)$$,
    'complete(array): both jobs are COMPLETED with no lease');
SELECT throws_ok(
    format('SELECT batchjob_complete(ARRAY[%s, %s])',
           pg_temp.jid('M3'), pg_temp.jid('M1')),
    '55000', format('job %s is COMPLETED, not PROCESSING', pg_temp.jid('M1')),
    'complete(array): one job not PROCESSING fails the whole call (55000)');
SELECT is((pg_temp.job('M3')).status, 'PROCESSING',
    'complete(array): after the refusal the PROCESSING job is unchanged');
SELECT throws_ok(
    format('SELECT batchjob_complete(ARRAY[%s, -42])', pg_temp.jid('M3')),
    'P0002', 'job -42 does not exist',
    'complete(array): a missing job fails the whole call (P0002)');
SELECT throws_ok(
    format('SELECT batchjob_complete(ARRAY[%s, %s])',
           pg_temp.jid('M3'), pg_temp.jid('M')),
    '22023', format('job %s is a parent job', pg_temp.jid('M')),
    'complete(array): a parent fails the whole call (22023)');
SELECT is(batchjob_complete(ARRAY[]::bigint[]), 0::bigint,
    'complete(array): an empty array changes nothing');
SELECT is(batchjob_complete(ARRAY[NULL]::bigint[]), 0::bigint,
    'complete(array): an array of NULLs changes nothing');
SELECT throws_ok('SELECT batchjob_complete(NULL::bigint[])',
    '22004', 'job_ids must not be null',
    'complete(array): a NULL array is refused (22004)');

SELECT is(batchjob_fail(ARRAY[pg_temp.jid('M3'), NULL, pg_temp.jid('M4'),
                              pg_temp.jid('M3')], 'bulk'),
    2::bigint,
    'fail(array): returns how many changed; duplicates and NULLs are ignored');
SELECT results_eq(
    $$SELECT status, error_details, locked_by, run_at > clock_timestamp()
        FROM batch_jobs WHERE job_id IN (pg_temp.jid('M3'), pg_temp.jid('M4'))$$,
    $$VALUES ('PENDING'::text, 'bulk'::text, NULL::text, true),
             ('PENDING', 'bulk', NULL, true)$$,
    'fail(array): jobs with attempts left go back to PENDING with a backoff');
SELECT throws_ok(
    format($$SELECT batchjob_fail(ARRAY[%s, %s], 'x', false)$$,
           pg_temp.jid('M5'), pg_temp.jid('M3')),
    '55000', format('job %s is PENDING, not PROCESSING', pg_temp.jid('M3')),
    'fail(array): one job not PROCESSING fails the whole call (55000)');
SELECT is((pg_temp.job('M5')).status, 'PROCESSING',
    'fail(array): after the refusal the PROCESSING job is unchanged');
SELECT is(batchjob_fail(ARRAY[pg_temp.jid('M5'), pg_temp.jid('M6')], 'fatal',
                        false),
    2::bigint, 'fail(array): retry => false fails every job at once');
SELECT results_eq(
    $$SELECT status, error_details FROM batch_jobs
       WHERE job_id IN (pg_temp.jid('M5'), pg_temp.jid('M6'))$$,
    $$VALUES ('FAILED'::text, 'fatal'::text), ('FAILED', 'fatal')$$,
    'fail(array): both jobs are FAILED with the error');
SELECT is(pg_temp.figures('M') - 'total_records' - 'processed_records'
              - 'success_count' - 'error_count',
    '{"status": "PROCESSING", "error_details": null, "pending": 2,
      "processing": 0, "completed": 2, "failed": 2, "cancelled": 0}'::jsonb,
    'fail(array): the parent''s counts are exact after the batch calls');
SELECT throws_ok($$SELECT batchjob_fail(ARRAY[1]::bigint[], 'x', NULL)$$,
    '22004', 'retry must not be null',
    'fail(array): NULL retry is refused (22004)');

-- 20 jobs failed together do not come back together
SELECT pg_temp.family('J', 20);
SELECT pg_temp.take('J' || b, 'wj') FROM generate_series(1, 20) AS b;
SELECT pg_temp.mark('jitter before');
SELECT is(batchjob_fail(ARRAY(SELECT id FROM ids WHERE name ~ '^J[0-9]+$'),
                        'together'),
    20::bigint, 'fail(array): 20 jobs fail in one call');
SELECT pg_temp.mark('jitter after');
SELECT ok((SELECT bool_and(run_at >= pg_temp.at('jitter before') + interval '0.5 seconds'
                       AND run_at < pg_temp.at('jitter after') + interval '1.5 seconds')
             FROM batch_jobs WHERE parent_job_id = pg_temp.jid('J')),
    'fail(array): every backoff is within 1 s x [0.5, 1.5)');
SELECT ok((SELECT max(run_at) - min(run_at) > interval '0.1 seconds'
             FROM batch_jobs WHERE parent_job_id = pg_temp.jid('J')),
    'fail(array): the backoffs are spread by the random factor');

/* ---- batchjob_reap ---- */

-- R1: expired, attempts left; R2: expired on its last attempt; R3: live lease
SELECT pg_temp.family('R', 3);
SELECT pg_temp.take('R1', 'wa');
UPDATE batch_jobs SET attempts = 2 WHERE job_id = pg_temp.jid('R2');
SELECT pg_temp.take('R2', 'wb');
SELECT pg_temp.take('R3', 'wc');
UPDATE batch_jobs SET locked_until = clock_timestamp() - interval '1 minute'
 WHERE job_id IN (pg_temp.jid('R1'), pg_temp.jid('R2'));
CREATE TEMP TABLE lease_r3 AS SELECT locked_until FROM batch_jobs
 WHERE job_id = pg_temp.jid('R3');

SELECT is(batchjob_reap(), 2::bigint, 'reap: returns how many expired leases it took back');
SELECT results_eq(
    $$SELECT status, locked_by, locked_until, attempts, error_details
        FROM batch_jobs WHERE job_id = pg_temp.jid('R1')$$,
    $$VALUES ('PENDING'::text, NULL::text, NULL::timestamptz, 1, NULL::text)$$,
    'reap: an expired lease with attempts left puts the job back to PENDING');
SELECT results_eq(
    $$SELECT status, locked_by, error_details, completed_at = now()
        FROM batch_jobs WHERE job_id = pg_temp.jid('R2')$$,
    $$VALUES ('FAILED'::text, NULL::text,
              'lease of worker wb expired on attempt 3 of 3'::text, true)$$,
    'reap: an expired lease on the last attempt fails the job and says why');
SELECT results_eq(
    $$SELECT status, locked_by, locked_until FROM batch_jobs
       WHERE job_id = pg_temp.jid('R3')$$,
    $$SELECT 'PROCESSING'::text, 'wc'::text, locked_until FROM lease_r3$$,
    'reap: a live lease is left alone');
SELECT is(batchjob_reap(), 0::bigint, 'reap: nothing more to take back');
SELECT is(pg_temp.figures('R') - 'total_records' - 'processed_records'
              - 'success_count' - 'error_count' - 'error_details',
    '{"status": "PROCESSING", "pending": 1, "processing": 1, "completed": 0,
      "failed": 1, "cancelled": 0}'::jsonb,
    'reap: the parent''s counts follow');
SELECT is(batchjob_heartbeat(pg_temp.jid('R1'), 'wa'), false,
    'reap: the worker that lost the lease gets false from heartbeat');
SELECT throws_ok(
    format('SELECT batchjob_complete(%s)', pg_temp.jid('R1')),
    '55000', format('job %s is PENDING, not PROCESSING', pg_temp.jid('R1')),
    'reap: the worker that lost the lease cannot complete (55000)');
SELECT pg_temp.park('R1');
SELECT results_eq($$SELECT job_id FROM batchjob_claim('wd')$$,
    format('VALUES (%s::bigint)', pg_temp.jid('R1')),
    'reap: the reaped job is claimable again at once');

/* ---- batchjob_retry ---- */

-- T: T1 COMPLETED, T2 FAILED -> T COMPLETED (partial success)
SELECT pg_temp.family('T', 2);
SELECT pg_temp.take('T1', 'wt');
SELECT pg_temp.done('T1');
SELECT pg_temp.take('T2', 'wt');
SELECT pg_temp.broke('T2', 'broken');
SELECT results_eq(
    $$SELECT status, error_details, completed_at IS NOT NULL FROM batch_jobs
       WHERE job_id = pg_temp.jid('T')$$,
    $$VALUES ('COMPLETED'::text, '1 out of 2 batch jobs failed'::text, true)$$,
    'retry: setup: the parent is a partial success');
SELECT results_eq(
    format($$SELECT job_id, status, attempts, run_at <= clock_timestamp()
               FROM batchjob_retry(%s)$$, pg_temp.jid('T2')),
    format($$VALUES (%s::bigint, 'PENDING'::text, 0, true)$$, pg_temp.jid('T2')),
    'retry: a FAILED job is PENDING again with attempts 0 and claimable now');
SELECT results_eq(
    $$SELECT status, completed_at, error_details, child_pending, child_failed
        FROM batch_jobs WHERE job_id = pg_temp.jid('T')$$,
    $$VALUES ('PROCESSING'::text, NULL::timestamptz, NULL::text, 1::bigint, 0::bigint)$$,
    'retry: the COMPLETED parent reopens to PROCESSING and drops completed_at');
SELECT pg_temp.park('T2');
SELECT results_eq($$SELECT job_id, attempts FROM batchjob_claim('wt')$$,
    format('VALUES (%s::bigint, 1)', pg_temp.jid('T2')),
    'retry: the retried job is claimed again, attempt 1');

-- U: both children FAILED -> U FAILED; retrying one reopens it
SELECT pg_temp.family('U', 2);
SELECT pg_temp.take('U1', 'wu');
SELECT pg_temp.broke('U1', 'no');
SELECT pg_temp.take('U2', 'wu');
SELECT pg_temp.broke('U2', 'no');
SELECT is((pg_temp.job('U')).status, 'FAILED', 'retry: setup: the parent is FAILED');
SELECT lives_ok(format('SELECT batchjob_retry(%s)', pg_temp.jid('U1')),
    'retry: a child of a FAILED parent can be retried');
SELECT results_eq(
    $$SELECT status, completed_at, error_details FROM batch_jobs
       WHERE job_id = pg_temp.jid('U')$$,
    $$VALUES ('PROCESSING'::text, NULL::timestamptz, NULL::text)$$,
    'retry: the FAILED parent reopens to PROCESSING');

SELECT throws_ok(
    format('SELECT batchjob_retry(%s)', pg_temp.jid('U1')),
    '55000', format('job %s is PENDING, not FAILED', pg_temp.jid('U1')),
    'retry: a PENDING job is refused (55000)');
SELECT throws_ok(
    format('SELECT batchjob_retry(%s)', pg_temp.jid('T1')),
    '55000', format('job %s is COMPLETED, not FAILED', pg_temp.jid('T1')),
    'retry: a COMPLETED job is refused (55000)');
SELECT throws_ok(
    format('SELECT batchjob_retry(%s)', pg_temp.jid('T2')),
    '55000', format('job %s is PROCESSING, not FAILED', pg_temp.jid('T2')),
    'retry: a PROCESSING job is refused (55000)');
SELECT throws_ok(
    format('SELECT batchjob_retry(%s)', pg_temp.jid('c6')),
    '55000', format('job %s is CANCELLED, not FAILED', pg_temp.jid('c6')),
    'retry: a CANCELLED job is refused (55000)');
SELECT throws_ok('SELECT batchjob_retry(-42)',
    'P0002', 'job -42 does not exist',
    'retry: a missing job is refused (P0002)');
SELECT throws_ok('SELECT batchjob_retry(NULL)',
    '22004', 'job_id must not be null',
    'retry: NULL job_id is refused (22004)');

-- on a parent: V1, V2 FAILED, V3 COMPLETED
SELECT pg_temp.family('V', 3);
SELECT pg_temp.take('V1', 'wv');
SELECT pg_temp.broke('V1', 'bad');
SELECT pg_temp.take('V2', 'wv');
SELECT pg_temp.broke('V2', 'bad');
SELECT pg_temp.take('V3', 'wv');
SELECT pg_temp.done('V3');
SELECT results_eq(
    format('SELECT job_id, status FROM batchjob_retry(%s)', pg_temp.jid('V')),
    format($$VALUES (%s::bigint, 'PROCESSING'::text)$$, pg_temp.jid('V')),
    'retry(parent): returns the parent, reopened');
SELECT results_eq(
    $$SELECT status, attempts FROM batch_jobs WHERE parent_job_id = pg_temp.jid('V')
       ORDER BY batch_number$$,
    $$VALUES ('PENDING'::text, 0), ('PENDING', 0), ('COMPLETED', 1)$$,
    'retry(parent): every FAILED child is PENDING with attempts 0; the COMPLETED one is untouched');
SELECT throws_ok(
    format('SELECT batchjob_retry(%s)', pg_temp.jid('V')),
    '55000', format('parent job %s has no FAILED job below it', pg_temp.jid('V')),
    'retry(parent): a parent with nothing FAILED below it is refused (55000)');
SELECT throws_ok(
    format('SELECT batchjob_retry(%s)', pg_temp.jid('Q')),
    '55000', NULL,
    'retry(parent): a childless parent is refused (55000)');

/* ---- batchjob_cancel ---- */

-- K1 COMPLETED, K2 PROCESSING (held by wk), K3 and K4 PENDING, K5 FAILED
SELECT pg_temp.family('K', 5);
SELECT pg_temp.take('K1', 'wk');
SELECT pg_temp.done('K1');
SELECT pg_temp.take('K5', 'wk');
SELECT pg_temp.broke('K5', 'bad');
SELECT pg_temp.take('K2', 'wk');

SELECT is(batchjob_cancel(pg_temp.jid('K3')), 1::bigint,
    'cancel: an unfinished leaf is cancelled, returns 1');
SELECT results_eq(
    $$SELECT status, completed_at = now() FROM batch_jobs
       WHERE job_id = pg_temp.jid('K3')$$,
    $$VALUES ('CANCELLED'::text, true)$$,
    'cancel: the leaf is CANCELLED with completed_at');
SELECT is(batchjob_cancel(pg_temp.jid('K3')), 0::bigint,
    'cancel: an already CANCELLED leaf returns 0');
SELECT is(batchjob_cancel(pg_temp.jid('K1')), 0::bigint,
    'cancel: a COMPLETED leaf returns 0');
SELECT is(batchjob_cancel(pg_temp.jid('K5')), 0::bigint,
    'cancel: a FAILED leaf returns 0');
SELECT results_eq(
    $$SELECT status FROM batch_jobs WHERE job_id IN (pg_temp.jid('K1'), pg_temp.jid('K5'))
       ORDER BY job_id$$,
    $$VALUES ('COMPLETED'::text), ('FAILED')$$,
    'cancel: finished leaves keep their status');

SELECT is(batchjob_cancel(pg_temp.jid('K')), 2::bigint,
    'cancel(parent): cancels the unfinished children (K2 PROCESSING, K4 PENDING), returns 2');
SELECT results_eq(
    $$SELECT status FROM batch_jobs WHERE parent_job_id = pg_temp.jid('K')
       ORDER BY batch_number$$,
    $$VALUES ('COMPLETED'::text), ('CANCELLED'), ('CANCELLED'), ('CANCELLED'),
             ('FAILED')$$,
    'cancel(parent): the finished children are untouched');
SELECT is(pg_temp.figures('K') - 'total_records' - 'processed_records'
              - 'success_count' - 'error_count',
    '{"status": "COMPLETED", "error_details": "1 out of 5 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 1, "failed": 1,
      "cancelled": 3}'::jsonb,
    'cancel(parent): a parent with a completed child ends COMPLETED');
SELECT is(batchjob_cancel(pg_temp.jid('K')), 0::bigint,
    'cancel(parent): nothing left to cancel returns 0');

SELECT is(batchjob_heartbeat(pg_temp.jid('K2'), 'wk'), false,
    'cancel: the worker holding a cancelled job gets false from heartbeat');
SELECT throws_ok(
    format('SELECT batchjob_progress(%s, 1, 1, 0)', pg_temp.jid('K2')),
    '55000', format('job %s is CANCELLED, not PROCESSING', pg_temp.jid('K2')),
    'cancel: ... 55000 from progress');
SELECT throws_ok(
    format('SELECT batchjob_complete(%s)', pg_temp.jid('K2')),
    '55000', format('job %s is CANCELLED, not PROCESSING', pg_temp.jid('K2')),
    'cancel: ... 55000 from complete');
SELECT throws_ok(
    format($$SELECT batchjob_fail(%s, 'x')$$, pg_temp.jid('K2')),
    '55000', format('job %s is CANCELLED, not PROCESSING', pg_temp.jid('K2')),
    'cancel: ... 55000 from fail');
SELECT is((pg_temp.job('K2')).locked_by, NULL,
    'cancel: the cancelled job has no lease holder');

SELECT pg_temp.family('L', 3);
SELECT pg_temp.take('L1', 'wl');
SELECT is(batchjob_cancel(pg_temp.jid('L')), 3::bigint,
    'cancel(parent): all three unfinished children are cancelled');
SELECT is(pg_temp.figures('L') - 'total_records' - 'processed_records'
              - 'success_count' - 'error_count',
    '{"status": "CANCELLED", "error_details": null, "pending": 0,
      "processing": 0, "completed": 0, "failed": 0, "cancelled": 3}'::jsonb,
    'cancel(parent): a parent whose children were all cancelled is CANCELLED');

INSERT INTO ids SELECT 'lonely', job_id
    FROM batchjob_create_parent('{}', 'tap');
SELECT is(batchjob_cancel(pg_temp.jid('lonely')), 1::bigint,
    'cancel: a childless PENDING parent is cancelled itself, returns 1');
SELECT is((pg_temp.job('lonely')).status, 'CANCELLED',
    'cancel: the childless parent is CANCELLED');
SELECT throws_ok('SELECT batchjob_cancel(-42)',
    'P0002', 'job -42 does not exist',
    'cancel: a missing job is refused (P0002)');
SELECT throws_ok('SELECT batchjob_cancel(NULL)',
    '22004', 'job_id must not be null',
    'cancel: NULL job_id is refused (22004)');

/* ---- the batch_job_progress view ---- */

INSERT INTO ids SELECT 'W', job_id FROM batchjob_create_parent('{}', 'tap');
INSERT INTO ids SELECT 'W' || batch_number, job_id
    FROM batchjob_split(pg_temp.jid('W'), 200, 50);
SELECT pg_temp.park();

SELECT results_eq(
    $$SELECT status, pending, processing, completed, failed, cancelled,
             children, processed_records, total_records, percent_done,
             records_per_second, estimated_finish, parent_job_id
        FROM batch_job_progress WHERE job_id = pg_temp.jid('W')$$,
    $$VALUES ('PENDING'::text, 4::bigint, 0::bigint, 0::bigint, 0::bigint,
              0::bigint, 4::bigint, 0::bigint, 200::bigint, 0.00::numeric,
              NULL::numeric, NULL::timestamptz, NULL::bigint)$$,
    'view: a parent before it starts: counts, 0.00 percent, no rate, no estimate');
SELECT set_eq($$SELECT job_id FROM batch_job_progress$$,
    $$SELECT job_id FROM batch_jobs WHERE is_parent$$,
    'view: one row per parent and none for leaves');

SELECT pg_temp.take('W1', 'ww');
SELECT lives_ok(format('SELECT batchjob_progress(%s, 50, 45, 5)', pg_temp.jid('W1')),
    'view: setup: a child reports 50 records');
SELECT pg_temp.take('W2', 'ww');
-- 100 seconds of work so far: 0.5 records per second
UPDATE batch_jobs SET started_at = now() - interval '100 seconds'
 WHERE job_id = pg_temp.jid('W');
SELECT results_eq(
    $$SELECT status, pending, processing, children, processed_records,
             percent_done, records_per_second, estimated_finish
        FROM batch_job_progress WHERE job_id = pg_temp.jid('W')$$,
    $$VALUES ('PROCESSING'::text, 2::bigint, 2::bigint, 4::bigint, 50::bigint,
              25.00::numeric, 0.50::numeric, now() + interval '300 seconds')$$,
    'view: while running: 25.00 percent at 0.50 records/s, 150 records to go in 300 s');

SELECT lives_ok(format('SELECT batchjob_complete(ARRAY[%s, %s])',
                       pg_temp.jid('W1'), pg_temp.jid('W2')),
    'view: setup: two children complete');
SELECT lives_ok(format('SELECT batchjob_cancel(%s)', pg_temp.jid('W')),
    'view: setup: the rest is cancelled');
SELECT results_eq(
    $$SELECT status, completed, cancelled, estimated_finish = now(),
             estimated_finish = (SELECT completed_at FROM batch_jobs
                                  WHERE job_id = pg_temp.jid('W'))
        FROM batch_job_progress WHERE job_id = pg_temp.jid('W')$$,
    $$VALUES ('COMPLETED'::text, 2::bigint, 2::bigint, true, true)$$,
    'view: a finished parent''s estimated_finish is its completed_at');
-- rate over started_at .. completed_at, not .. now()
UPDATE batch_jobs SET started_at = now() - interval '40 seconds',
                      completed_at = now() - interval '20 seconds'
 WHERE job_id = pg_temp.jid('W');
SELECT is((SELECT records_per_second FROM batch_job_progress
            WHERE job_id = pg_temp.jid('W')),
    2.50::numeric,
    'view: a finished parent''s rate is measured up to completed_at (50 records in 20 s)');

INSERT INTO ids SELECT 'X', job_id FROM batchjob_create_parent('{}', 'tap');
SELECT results_eq(
    $$SELECT children, total_records, percent_done, records_per_second,
             estimated_finish
        FROM batch_job_progress WHERE job_id = pg_temp.jid('X')$$,
    $$VALUES (0::bigint, NULL::bigint, NULL::numeric, NULL::numeric,
              NULL::timestamptz)$$,
    'view: a parent with no total has no percent, rate or estimate');
SELECT pg_temp.family('Y', 1);
SELECT pg_temp.take('Y1', 'wy');
SELECT is((SELECT records_per_second FROM batch_job_progress
            WHERE job_id = pg_temp.jid('Y')),
    NULL::numeric,
    'view: a started parent with nothing processed has no rate yet');

SELECT * FROM finish();
ROLLBACK;
