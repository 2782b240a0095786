/*
 * test/policy_nesting.sql - pgTAP: what a failed child does to its parent
 * (on_child_failure 'continue' or 'fail_fast'), and parents nested under
 * parents: creation, rollup through every level, retry and cancel of a
 * subtree, re-parenting and the cycle check.
 *
 * Like test/lifecycle.sql, the file starts from an empty table and keeps
 * every PENDING job it is not about to claim parked (run_at = 'infinity').
 */
BEGIN;
SELECT plan(84);
\ir pgtap/fixture.sql

-- A named parent's status and child counts.
CREATE FUNCTION pg_temp.counts(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_build_object(
              'status', status, 'error_details', error_details,
              'pending', child_pending, 'processing', child_processing,
              'completed', child_completed, 'failed', child_failed,
              'cancelled', child_cancelled)
          FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;
-- A named parent's record figures.
CREATE FUNCTION pg_temp.sums(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT jsonb_build_object(
              'total', total_records, 'processed', processed_records,
              'success', success_count, 'error', error_count)
          FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;
CREATE FUNCTION pg_temp.park(but text DEFAULT NULL) RETURNS void LANGUAGE sql
    AS $$ UPDATE batch_jobs SET run_at = 'infinity'
           WHERE status = 'PENDING' AND NOT is_parent
             AND run_at <> 'infinity'
             AND job_id IS DISTINCT FROM
                 (SELECT id FROM ids WHERE name = but) $$;
-- A parent (under another one if "under" is given) and n children of 10
-- records each, named <name>1 .. <name>n; all parked.
CREATE FUNCTION pg_temp.family(name text, n integer,
                               policy text DEFAULT 'continue',
                               under text DEFAULT NULL)
    RETURNS void LANGUAGE plpgsql
    AS $$BEGIN
        INSERT INTO ids SELECT name, job_id
            FROM batchjob_create_parent(jsonb_build_object('t', name), 'tap',
                     on_child_failure => policy,
                     parent_job_id => CASE WHEN under IS NOT NULL
                                           THEN pg_temp.jid(under) END);
        INSERT INTO ids SELECT name || b, job_id
            FROM generate_series(1, n) AS b,
                 batchjob_create_child(pg_temp.jid(name), b, (b - 1) * 10, 10);
        PERFORM pg_temp.park();
    END$$;
-- Claims exactly the named job through batchjob_claim().
CREATE FUNCTION pg_temp.take(name text, worker text DEFAULT 'w')
    RETURNS void LANGUAGE plpgsql
    AS $$DECLARE got bigint[];
    BEGIN
        PERFORM pg_temp.park();
        UPDATE batch_jobs SET run_at = now() - interval '1 second'
         WHERE job_id = pg_temp.jid(name);
        SELECT array_agg(job_id) INTO got FROM batchjob_claim(worker, 1);
        IF got IS DISTINCT FROM ARRAY[pg_temp.jid(name)] THEN
            RAISE EXCEPTION 'take(%): claimed % instead', name, got;
        END IF;
    END$$;
CREATE FUNCTION pg_temp.broke(name text, retry boolean DEFAULT false)
    RETURNS void LANGUAGE sql
    AS $$ SELECT NULL FROM batchjob_fail(pg_temp.jid(name), 'broke', retry) $$;

/* ---- on_child_failure: arguments ---- */

SELECT results_eq(
    $$SELECT on_child_failure, is_parent, status
        FROM batchjob_create_parent('{}', 'tap', 0, NULL, 'fail_fast')$$,
    $$VALUES ('fail_fast'::text, true, 'PENDING'::text)$$,
    'policy: create_parent stores on_child_failure fail_fast');
SELECT is((SELECT on_child_failure FROM batchjob_create_parent('{}', 'tap')),
    'continue', 'policy: on_child_failure defaults to continue');
SELECT is((SELECT on_child_failure FROM batchjob_create_parent('{}', 'tap', 0, 10)),
    'continue', 'policy: the 1.0 four-argument call still works, with continue');
SELECT throws_ok(
    $$SELECT batchjob_create_parent('{}', 'tap', on_child_failure => 'stop')$$,
    '22023', 'unknown on_child_failure "stop"',
    'policy: an unknown policy is refused (22023)');
SELECT throws_ok(
    $$SELECT batchjob_create_parent('{}', 'tap', on_child_failure => 'FAIL_FAST')$$,
    '22023', 'unknown on_child_failure "FAIL_FAST"',
    'policy: policy names are case-sensitive (22023)');
SELECT throws_ok(
    $$SELECT batchjob_create_parent('{}', 'tap', on_child_failure => NULL)$$,
    '22004', 'on_child_failure must not be null',
    'policy: a NULL policy is refused (22004)');

/* ---- fail_fast ---- */

-- A1 COMPLETED, A2 PROCESSING (worker wa), A3 PENDING, A4 fails
SELECT pg_temp.family('A', 4, 'fail_fast');
SELECT pg_temp.take('A1');
SELECT pg_temp.done('A1');
SELECT pg_temp.take('A2', 'wa');
SELECT pg_temp.take('A4');
SELECT pg_temp.broke('A4', true);
SELECT is(pg_temp.counts('A'),
    '{"status": "PROCESSING", "error_details": null, "pending": 2,
      "processing": 1, "completed": 1, "failed": 0, "cancelled": 0}'::jsonb,
    'fail_fast: a child failing with retries left does not fail the parent');
SELECT results_eq(
    $$SELECT status FROM batch_jobs WHERE parent_job_id = pg_temp.jid('A')
       ORDER BY batch_number$$,
    $$VALUES ('COMPLETED'::text), ('PROCESSING'), ('PENDING'), ('PENDING')$$,
    'fail_fast: ... and cancels nothing');

SELECT pg_temp.take('A4');
SELECT pg_temp.broke('A4');
SELECT is(pg_temp.counts('A'),
    '{"status": "FAILED", "error_details": "1 out of 4 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 1, "failed": 1,
      "cancelled": 2}'::jsonb,
    'fail_fast: the first final failure fails the parent, "1 out of 4 batch jobs failed"');
SELECT results_eq(
    $$SELECT status FROM batch_jobs WHERE parent_job_id = pg_temp.jid('A')
       ORDER BY batch_number$$,
    $$VALUES ('COMPLETED'::text), ('CANCELLED'), ('CANCELLED'), ('FAILED')$$,
    'fail_fast: the unfinished siblings (PROCESSING and PENDING) are CANCELLED, the finished one kept');
SELECT is((SELECT completed_at FROM batch_jobs WHERE job_id = pg_temp.jid('A')),
    now(), 'fail_fast: the failed parent has its completed_at');
SELECT is(batchjob_heartbeat(pg_temp.jid('A2'), 'wa'), false,
    'fail_fast: the worker of a cancelled sibling gets false from heartbeat');
SELECT throws_ok(
    format('SELECT batchjob_complete(%s)', pg_temp.jid('A2')),
    '55000', format('job %s is CANCELLED, not PROCESSING', pg_temp.jid('A2')),
    'fail_fast: ... and 55000 from complete');

-- retrying the failed child reopens the parent; the cancelled stay so
SELECT lives_ok(format('SELECT batchjob_retry(%s)', pg_temp.jid('A4')),
    'fail_fast: the failed child can be retried');
SELECT is(pg_temp.counts('A'),
    '{"status": "PROCESSING", "error_details": null, "pending": 1,
      "processing": 0, "completed": 1, "failed": 0, "cancelled": 2}'::jsonb,
    'fail_fast: the retried child reopens the parent; cancelled siblings stay cancelled');
SELECT pg_temp.take('A4');
SELECT pg_temp.done('A4');
SELECT is(pg_temp.st('A'), 'COMPLETED',
    'fail_fast: the parent completes once the retried child does');

-- every sibling already finished: fail_fast FAILED where continue COMPLETED
SELECT pg_temp.family('B', 2, 'fail_fast');
SELECT pg_temp.family('C', 2, 'continue');
SELECT pg_temp.take('B1');
SELECT pg_temp.done('B1');
SELECT pg_temp.take('B2');
SELECT pg_temp.broke('B2');
SELECT pg_temp.take('C1');
SELECT pg_temp.done('C1');
SELECT pg_temp.take('C2');
SELECT pg_temp.broke('C2');
SELECT is(pg_temp.counts('B'),
    '{"status": "FAILED", "error_details": "1 out of 2 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 1, "failed": 1,
      "cancelled": 0}'::jsonb,
    'fail_fast: one failed and one completed child make a FAILED parent');
SELECT is(pg_temp.counts('C'),
    '{"status": "COMPLETED", "error_details": "1 out of 2 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 1, "failed": 1,
      "cancelled": 0}'::jsonb,
    'continue: the same children make a COMPLETED parent (1.0 partial success)');

-- continue: a final failure cancels nothing and finishes nothing early
SELECT pg_temp.family('D', 3, 'continue');
SELECT pg_temp.take('D1', 'wd');
SELECT pg_temp.take('D2');
SELECT pg_temp.broke('D2');
SELECT is(pg_temp.counts('D'),
    '{"status": "PROCESSING", "error_details": null, "pending": 1,
      "processing": 1, "completed": 0, "failed": 1, "cancelled": 0}'::jsonb,
    'continue: after a final child failure the parent keeps running');
SELECT results_eq(
    $$SELECT status, locked_by FROM batch_jobs WHERE parent_job_id = pg_temp.jid('D')
       ORDER BY batch_number$$,
    $$VALUES ('PROCESSING'::text, 'wd'::text), ('FAILED', NULL), ('PENDING', NULL)$$,
    'continue: the siblings are untouched');
SELECT pg_temp.done('D1');
SELECT pg_temp.take('D3');
SELECT pg_temp.done('D3');
SELECT is(pg_temp.counts('D'),
    '{"status": "COMPLETED", "error_details": "1 out of 3 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 2, "failed": 1,
      "cancelled": 0}'::jsonb,
    'continue: the parent finishes COMPLETED with the failure count');

-- fail_fast through the other ways a child fails for good
SELECT pg_temp.family('E', 3, 'fail_fast');
UPDATE batch_jobs SET max_attempts = 1 WHERE job_id = pg_temp.jid('E1');
SELECT pg_temp.take('E1', 'we');
UPDATE batch_jobs SET locked_until = clock_timestamp() - interval '1 minute'
 WHERE job_id = pg_temp.jid('E1');
SELECT is(batchjob_reap(), 1::bigint, 'fail_fast: setup: the lease on E1 is reaped');
SELECT is(pg_temp.counts('E'),
    '{"status": "FAILED", "error_details": "1 out of 3 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 0, "failed": 1,
      "cancelled": 2}'::jsonb,
    'fail_fast: a child failed by batchjob_reap() on its last attempt fails the parent');

SELECT pg_temp.family('H', 4, 'fail_fast');
SELECT pg_temp.take('H1');
SELECT pg_temp.take('H2');
SELECT is(batchjob_fail(ARRAY[pg_temp.jid('H1'), pg_temp.jid('H2')], 'bulk', false),
    2::bigint, 'fail_fast: setup: two children fail in one call');
SELECT is(pg_temp.counts('H'),
    '{"status": "FAILED", "error_details": "2 out of 4 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 0, "failed": 2,
      "cancelled": 2}'::jsonb,
    'fail_fast: failures by batchjob_fail(bigint[]) fail the parent and cancel the rest');

SELECT throws_ok(
    format($$UPDATE batch_jobs SET on_child_failure = 'sometimes' WHERE job_id = %s$$,
           pg_temp.jid('H')),
    '23514', NULL,
    'policy: the table refuses an unknown on_child_failure (23514)');

/* ---- nesting: creation and rollup through every level ---- */

-- R ─┬─ M1 ─┬─ a1 (10)
--    │      └─ G ── g1, g2 (15 each, by split)
--    ├─ M2 ── b1 (20)
--    └─ d1 (5)
INSERT INTO ids SELECT 'R', job_id FROM batchjob_create_parent('{"t": "R"}', 'tap');
SELECT results_eq(
    format($$SELECT parent_job_id, is_parent, status, on_child_failure
               FROM batchjob_create_parent('{"t": "M1"}', 'tap', parent_job_id => %s)$$,
           pg_temp.jid('R')),
    format($$VALUES (%s::bigint, true, 'PENDING'::text, 'continue'::text)$$,
           pg_temp.jid('R')),
    'nesting: create_parent(parent_job_id => R) makes a PENDING parent under R');
INSERT INTO ids SELECT 'M1', job_id FROM batch_jobs
 WHERE parent_job_id = pg_temp.jid('R');
INSERT INTO ids SELECT 'M2', job_id
    FROM batchjob_create_parent('{"t": "M2"}', 'tap', 0, NULL, 'continue', pg_temp.jid('R'));
INSERT INTO ids SELECT 'G', job_id
    FROM batchjob_create_parent('{"t": "G"}', 'tap', parent_job_id => pg_temp.jid('M1'));
INSERT INTO ids SELECT 'a1', job_id FROM batchjob_create_child(pg_temp.jid('M1'), 1, 0, 10);
INSERT INTO ids SELECT 'g' || batch_number, job_id FROM batchjob_split(pg_temp.jid('G'), 30, 15);
INSERT INTO ids SELECT 'b1', job_id FROM batchjob_create_child(pg_temp.jid('M2'), 1, 0, 20);
INSERT INTO ids SELECT 'd1', job_id FROM batchjob_create_child(pg_temp.jid('R'), 1, 0, 5);
SELECT pg_temp.park();

SELECT is(pg_temp.counts('R') || pg_temp.sums('R'),
    '{"status": "PENDING", "error_details": null, "pending": 3,
      "processing": 0, "completed": 0, "failed": 0, "cancelled": 0,
      "total": 65, "processed": 0, "success": 0, "error": 0}'::jsonb,
    'nesting: the root counts M1, M2 and d1 and the records of the whole tree');
SELECT is(pg_temp.counts('M1') || pg_temp.sums('M1'),
    '{"status": "PENDING", "error_details": null, "pending": 2,
      "processing": 0, "completed": 0, "failed": 0, "cancelled": 0,
      "total": 40, "processed": 0, "success": 0, "error": 0}'::jsonb,
    'nesting: M1 counts a1 and G, and their 40 records');
SELECT is(pg_temp.sums('G'),
    '{"total": 30, "processed": 0, "success": 0, "error": 0}'::jsonb,
    'nesting: G holds its split total');
SELECT set_eq(
    format('SELECT job_id FROM batchjob_children(%s)', pg_temp.jid('R')),
    format('VALUES (%s::bigint), (%s), (%s)', pg_temp.jid('M1'), pg_temp.jid('M2'),
           pg_temp.jid('d1')),
    'nesting: batchjob_children(R) lists the nested parents and the leaf');
SELECT is_empty(
    $$SELECT * FROM batchjob_claim('nobody', 100)$$,
    'nesting: setup: every leaf is parked');

UPDATE batch_jobs SET run_at = now() - interval '1 second'
 WHERE job_id IN (SELECT id FROM ids WHERE name IN ('a1', 'g1', 'g2', 'b1', 'd1'));
SELECT set_eq($$SELECT job_id FROM batchjob_claim('wn', 100)$$,
    $$SELECT id FROM ids WHERE name IN ('a1', 'g1', 'g2', 'b1', 'd1')$$,
    'nesting: claim takes the five leaves and none of the four parents');
SELECT results_eq(
    $$SELECT status FROM batch_jobs
       WHERE job_id IN (pg_temp.jid('R'), pg_temp.jid('M1'), pg_temp.jid('M2'),
                        pg_temp.jid('G'))
       ORDER BY job_id$$,
    $$VALUES ('PROCESSING'::text), ('PROCESSING'), ('PROCESSING'), ('PROCESSING')$$,
    'nesting: every parent up to the root is PROCESSING');
SELECT is(pg_temp.counts('R') -> 'processing', '3'::jsonb,
    'nesting: the root counts its three children as PROCESSING');

SELECT lives_ok(
    $$SELECT batchjob_progress(pg_temp.jid(n), p, s, e)
        FROM (VALUES ('g1', 15, 14, 1), ('g2', 15, 15, 0), ('a1', 10, 10, 0),
                     ('b1', 20, 18, 2), ('d1', 5, 5, 0)) AS v(n, p, s, e)$$,
    'nesting: setup: every leaf reports all its records');
SELECT is(pg_temp.sums('G'),
    '{"total": 30, "processed": 30, "success": 29, "error": 1}'::jsonb,
    'nesting: G sums its leaves');
SELECT is(pg_temp.sums('M1'),
    '{"total": 40, "processed": 40, "success": 39, "error": 1}'::jsonb,
    'nesting: M1 sums a1 and G');
SELECT is(pg_temp.sums('M2'),
    '{"total": 20, "processed": 20, "success": 18, "error": 2}'::jsonb,
    'nesting: M2 sums b1');
SELECT is(pg_temp.sums('R'),
    '{"total": 65, "processed": 65, "success": 62, "error": 3}'::jsonb,
    'nesting: the root holds the exact sums of the whole tree');
SELECT lives_ok(
    $$SELECT batchjob_progress(pg_temp.jid('g1'), 15, 14, 1)$$,
    'nesting: setup: a leaf resends its report');
SELECT is(pg_temp.sums('R'),
    '{"total": 65, "processed": 65, "success": 62, "error": 3}'::jsonb,
    'nesting: a resent report changes nothing at the root');

SELECT pg_temp.done('g1');
SELECT results_eq(
    $$SELECT status FROM batch_jobs
       WHERE job_id IN (pg_temp.jid('G'), pg_temp.jid('M1'), pg_temp.jid('R'))
       ORDER BY job_id$$,
    $$VALUES ('PROCESSING'::text), ('PROCESSING'), ('PROCESSING')$$,
    'nesting: one of two leaves done leaves every level PROCESSING');
SELECT pg_temp.done('g2');
SELECT is(pg_temp.st('G'), 'COMPLETED', 'nesting: G completes with its last leaf');
SELECT is(pg_temp.counts('M1') -> 'completed', '1'::jsonb,
    'nesting: M1 counts the completed G');
SELECT is(pg_temp.st('M1'), 'PROCESSING', 'nesting: M1 still waits for a1');
SELECT pg_temp.done('a1');
SELECT is(pg_temp.st('M1'), 'COMPLETED', 'nesting: M1 completes with a1');
SELECT pg_temp.broke('b1');
SELECT is(pg_temp.counts('M2'),
    '{"status": "FAILED", "error_details": "1 out of 1 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 0, "failed": 1,
      "cancelled": 0}'::jsonb,
    'nesting: M2 fails with its only leaf');
SELECT is(pg_temp.st('R'), 'PROCESSING', 'nesting: the root still waits for d1');
SELECT pg_temp.done('d1');
SELECT is(pg_temp.counts('R'),
    '{"status": "COMPLETED", "error_details": "1 out of 3 batch jobs failed",
      "pending": 0, "processing": 0, "completed": 2, "failed": 1,
      "cancelled": 0}'::jsonb,
    'nesting: the root finishes COMPLETED, counting the FAILED M2 as a failed child');
SELECT is((SELECT completed_at FROM batch_jobs WHERE job_id = pg_temp.jid('R')),
    now(), 'nesting: the root has its completed_at');
SELECT results_eq(
    $$SELECT job_id, parent_job_id, status, children, processed_records, total_records
        FROM batch_job_progress
       WHERE job_id IN (SELECT id FROM ids WHERE name IN ('R', 'M1', 'M2', 'G'))
       ORDER BY job_id$$,
    format($$VALUES (%s::bigint, NULL::bigint, 'COMPLETED'::text, 3::bigint, 65::bigint, 65::bigint),
                    (%s, %s, 'COMPLETED', 2, 40, 40),
                    (%s, %s, 'FAILED', 1, 20, 20),
                    (%s, %s, 'COMPLETED', 2, 30, 30)$$,
           pg_temp.jid('R'), pg_temp.jid('M1'), pg_temp.jid('R'),
           pg_temp.jid('M2'), pg_temp.jid('R'), pg_temp.jid('G'), pg_temp.jid('M1')),
    'nesting: the progress view has a row for every parent with its own parent');

/* ---- nesting: retry and cancel over a subtree ---- */

SELECT results_eq(
    format('SELECT job_id, status FROM batchjob_retry(%s)', pg_temp.jid('R')),
    format($$VALUES (%s::bigint, 'PROCESSING'::text)$$, pg_temp.jid('R')),
    'nesting: retry(root) retries the FAILED leaf two levels down and reopens the root');
SELECT results_eq(
    $$SELECT status, attempts FROM batch_jobs WHERE job_id = pg_temp.jid('b1')$$,
    $$VALUES ('PENDING'::text, 0)$$,
    'nesting: the FAILED leaf is PENDING with attempts 0');
-- M2's only child is PENDING again; M2 has started before, so it reopens
-- to PROCESSING, not PENDING
SELECT results_eq(
    $$SELECT status, completed_at, error_details FROM batch_jobs
       WHERE job_id = pg_temp.jid('M2')$$,
    $$VALUES ('PROCESSING'::text, NULL::timestamptz, NULL::text)$$,
    'nesting: the FAILED middle parent reopens to PROCESSING (it has started)');
SELECT results_eq(
    $$SELECT status, completed_at, error_details FROM batch_jobs
       WHERE job_id = pg_temp.jid('R')$$,
    $$VALUES ('PROCESSING'::text, NULL::timestamptz, NULL::text)$$,
    'nesting: the COMPLETED root reopens to PROCESSING without completed_at');
SELECT pg_temp.take('b1');
SELECT pg_temp.done('b1');
SELECT is(pg_temp.counts('R'),
    '{"status": "COMPLETED", "error_details": null, "pending": 0,
      "processing": 0, "completed": 3, "failed": 0, "cancelled": 0}'::jsonb,
    'nesting: after the retried leaf completes, the whole tree is COMPLETED');

-- S ─┬─ N1 ── n11, n12 (PENDING)
--    ├─ N2 (no children)
--    ├─ N3 ─┬─ n31 (COMPLETED)
--    │      └─ n32 (PENDING)
--    └─ e1 (PROCESSING)
INSERT INTO ids SELECT 'S', job_id FROM batchjob_create_parent('{}', 'tap');
SELECT pg_temp.family('N1', 2, 'continue', 'S');
SELECT pg_temp.family('N2', 0, 'continue', 'S');
SELECT pg_temp.family('N3', 2, 'continue', 'S');
INSERT INTO ids SELECT 'e1', job_id FROM batchjob_create_child(pg_temp.jid('S'), 1, 0, 10);
SELECT pg_temp.take('N31');
SELECT pg_temp.done('N31');
SELECT pg_temp.take('e1', 'we');

SELECT is(batchjob_cancel(pg_temp.jid('N3')), 1::bigint,
    'nesting: cancel(middle) cancels only its own subtree');
SELECT is(pg_temp.st('N3'), 'COMPLETED',
    'nesting: the middle parent with a completed leaf ends COMPLETED');
SELECT is(pg_temp.st('N11'), 'PENDING', 'nesting: a cousin is untouched');
SELECT is(batchjob_cancel(pg_temp.jid('S')), 4::bigint,
    'nesting: cancel(root) cancels every unfinished job below: n11, n12, the childless N2 and e1');
SELECT results_eq(
    $$SELECT status FROM batch_jobs
       WHERE job_id IN (SELECT id FROM ids
                         WHERE name IN ('N1', 'N2', 'N3', 'N11', 'N12', 'N31', 'e1'))
       ORDER BY job_id$$,
    -- by job_id: N1, N11, N12, N2, N3, N31, e1
    $$VALUES ('CANCELLED'::text), ('CANCELLED'), ('CANCELLED'), ('CANCELLED'),
             ('COMPLETED'), ('COMPLETED'), ('CANCELLED')$$,
    'nesting: everything unfinished below the root is CANCELLED, finished jobs kept');
SELECT is(pg_temp.counts('S'),
    '{"status": "COMPLETED", "error_details": null, "pending": 0,
      "processing": 0, "completed": 1, "failed": 0, "cancelled": 3}'::jsonb,
    'nesting: the root, with one COMPLETED child (N3), ends COMPLETED');
SELECT is(batchjob_heartbeat(pg_temp.jid('e1'), 'we'), false,
    'nesting: the worker of a cancelled leaf gets false from heartbeat');

INSERT INTO ids SELECT 'Z', job_id FROM batchjob_create_parent('{}', 'tap');
SELECT pg_temp.family('Z1', 2, 'continue', 'Z');
SELECT is(batchjob_cancel(pg_temp.jid('Z')), 2::bigint,
    'nesting: cancel(root) reaches leaves two levels down');
SELECT results_eq(
    $$SELECT status FROM batch_jobs WHERE job_id IN (pg_temp.jid('Z'), pg_temp.jid('Z1'))
       ORDER BY job_id$$,
    $$VALUES ('CANCELLED'::text), ('CANCELLED')$$,
    'nesting: with every child cancelled, the middle and the root are CANCELLED');

/* ---- nesting: fail_fast in a tree ---- */

-- T (continue) ─┬─ TF (fail_fast) ── TF1, TF2
--               └─ TC (continue)  ── TC1
INSERT INTO ids SELECT 'T', job_id FROM batchjob_create_parent('{}', 'tap');
SELECT pg_temp.family('TF', 2, 'fail_fast', 'T');
SELECT pg_temp.family('TC', 1, 'continue', 'T');
SELECT pg_temp.take('TF1');
SELECT pg_temp.broke('TF1');
SELECT results_eq(
    $$SELECT status FROM batch_jobs
       WHERE job_id IN (SELECT id FROM ids WHERE name IN ('TF', 'TF2', 'TC', 'TC1'))
       ORDER BY job_id$$,
    $$VALUES ('FAILED'::text), ('CANCELLED'), ('PENDING'), ('PENDING')$$,
    'nesting: a fail_fast middle parent fails and cancels only its own children');
SELECT is(pg_temp.counts('T'),
    '{"status": "PROCESSING", "error_details": null, "pending": 1,
      "processing": 0, "completed": 0, "failed": 1, "cancelled": 0}'::jsonb,
    'nesting: the continue root counts the FAILED middle and keeps going');

-- V (fail_fast) ─┬─ VC (continue) ── VC1, VC2
--                └─ v1
-- fail_fast looks at V's own children: a leaf failing under VC does not
-- fail V while VC is still running, nor when VC ends a partial success.
INSERT INTO ids SELECT 'V', job_id
    FROM batchjob_create_parent('{}', 'tap', on_child_failure => 'fail_fast');
SELECT pg_temp.family('VC', 2, 'continue', 'V');
INSERT INTO ids SELECT 'v1', job_id FROM batchjob_create_child(pg_temp.jid('V'), 1, 0, 10);
SELECT pg_temp.park();
SELECT pg_temp.take('VC1');
SELECT pg_temp.broke('VC1');
SELECT results_eq(
    $$SELECT status FROM batch_jobs
       WHERE job_id IN (SELECT id FROM ids WHERE name IN ('V', 'VC', 'VC2', 'v1'))
       ORDER BY job_id$$,
    $$VALUES ('PROCESSING'::text), ('PROCESSING'), ('PENDING'), ('PENDING')$$,
    'nesting: a grandchild failing under a continue middle does not trigger the fail_fast root');
SELECT pg_temp.take('VC2');
SELECT pg_temp.broke('VC2');
SELECT results_eq(
    $$SELECT status FROM batch_jobs
       WHERE job_id IN (SELECT id FROM ids WHERE name IN ('V', 'VC', 'v1'))
       ORDER BY job_id$$,
    $$VALUES ('FAILED'::text), ('FAILED'), ('CANCELLED')$$,
    'nesting: once the middle parent FAILs, the fail_fast root fails and cancels its other child');

/* ---- nesting: re-parenting and the cycle check ---- */

SELECT throws_ok(
    format('UPDATE batch_jobs SET parent_job_id = %s WHERE job_id = %s',
           pg_temp.jid('G'), pg_temp.jid('R')),
    '22023', format('job %s cannot be placed under job %s', pg_temp.jid('R'),
                    pg_temp.jid('G')),
    'cycle: the root under its grandchild is refused (22023)');
SELECT throws_ok(
    format('UPDATE batch_jobs SET parent_job_id = %s WHERE job_id = %s',
           pg_temp.jid('G'), pg_temp.jid('M1')),
    '22023', format('job %s cannot be placed under job %s', pg_temp.jid('M1'),
                    pg_temp.jid('G')),
    'cycle: a parent under its own child is refused (22023)');
-- a job under itself never reaches the cycle check: the table's CHECK
-- constraint batch_jobs_not_own_parent_check refuses it first
SELECT throws_ok(
    format('UPDATE batch_jobs SET parent_job_id = job_id WHERE job_id = %s',
           pg_temp.jid('M1')),
    '23514', NULL,
    'cycle: a parent under itself is refused by the CHECK constraint (23514)');
SELECT throws_ok(
    format($$UPDATE batch_jobs SET parent_job_id = CASE job_id WHEN %1$s THEN %2$s
                                                       ELSE %1$s END
              WHERE job_id IN (%1$s, %2$s)$$,
           pg_temp.jid('C'), pg_temp.jid('D')),
    '22023', format('job %s cannot be placed under job %s', pg_temp.jid('C'),
                    pg_temp.jid('D')),
    'cycle: two parents placed under each other in one statement are refused (22023)');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (job_id, is_parent, parent_job_id)
      VALUES (-1001, true, -1002), (-1002, true, -1001)$$,
    '22023', 'job -1001 cannot be placed under job -1002',
    'cycle: two parents inserted under each other in one statement are refused (22023)');
SELECT throws_ok(
    format('UPDATE batch_jobs SET parent_job_id = -999 WHERE job_id = %s',
           pg_temp.jid('M2')),
    '23503', NULL,
    'nesting: a parent placed under a missing job is refused (23503)');
SELECT throws_ok(
    format('UPDATE batch_jobs SET parent_job_id = %s WHERE job_id = %s',
           pg_temp.jid('a1'), pg_temp.jid('M2')),
    '22023', format('job %s is not a parent job', pg_temp.jid('a1')),
    'nesting: a parent placed under a leaf is refused (22023)');
SELECT throws_ok(
    format('UPDATE batch_jobs SET parent_job_id = %s WHERE job_id = %s',
           pg_temp.jid('a1'), pg_temp.jid('d1')),
    '22023', format('job %s is not a parent job', pg_temp.jid('a1')),
    'nesting: a leaf placed under a leaf is refused (22023)');
SELECT throws_ok(
    format($$SELECT batchjob_create_parent('{}', 'tap', parent_job_id => %s)$$,
           pg_temp.jid('a1')),
    '22023', format('job %s is not a parent job', pg_temp.jid('a1')),
    'nesting: create_parent under a leaf is refused (22023)');
SELECT throws_ok(
    $$SELECT batchjob_create_parent('{}', 'tap', parent_job_id => -1)$$,
    '23503', 'parent job -1 does not exist',
    'nesting: create_parent under a missing job is refused (23503)');
SELECT is((SELECT parent_job_id FROM batch_jobs WHERE job_id = pg_temp.jid('R')), NULL,
    'cycle: the refused statements changed nothing');

-- a legitimate move: M2 from under R to under M1 (both in R's tree)
SELECT lives_ok(
    format('UPDATE batch_jobs SET parent_job_id = %s WHERE job_id = %s',
           pg_temp.jid('M1'), pg_temp.jid('M2')),
    'nesting: moving a parent under a cousin (no cycle) is accepted');
SELECT is(pg_temp.counts('M1') || pg_temp.sums('M1'),
    '{"status": "COMPLETED", "error_details": null, "pending": 0,
      "processing": 0, "completed": 3, "failed": 0, "cancelled": 0,
      "total": 60, "processed": 60, "success": 57, "error": 3}'::jsonb,
    'nesting: M1 now counts M2 and its records');
SELECT is(pg_temp.counts('R') || pg_temp.sums('R'),
    '{"status": "COMPLETED", "error_details": null, "pending": 0,
      "processing": 0, "completed": 2, "failed": 0, "cancelled": 0,
      "total": 65, "processed": 65, "success": 62, "error": 3}'::jsonb,
    'nesting: R lost a direct child but still sums the whole tree exactly');

SELECT * FROM finish();
ROLLBACK;
