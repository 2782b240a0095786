/*
 * test/verify.sql - pgTAP: batchjob_verify(), the invariant checker.
 *
 * First it must find nothing wrong with healthy data of every shape: flat
 * parents in every status, nested parents, a split of zero records, parents
 * and leaves without family, and parents whose stored row lags behind
 * because differences still wait in batch_job_deltas.  Such waiting
 * differences are made by hand: a parent's stored figures are moved back
 * and the matching difference is inserted, which is exactly the state a
 * rollup that deferred its difference leaves behind.
 *
 * Then every kind of corruption is planted, one at a time, and verify must
 * return exactly the expected rows.  Planting needs the row guard and the
 * rollup off, since they exist to prevent these states;
 * pg_temp.verify_after() plants inside a subtransaction, reads
 * batchjob_verify(), and rolls the subtransaction back, so each corruption
 * is gone before the next one.
 *
 * Like test/lifecycle.sql, the file starts from an empty table and keeps
 * every PENDING job it is not about to claim parked (run_at = 'infinity').
 */
BEGIN;
SELECT plan(43);
\ir pgtap/fixture.sql

-- A parent (under another one if "under" is given), split into n children
-- of 10 records named <name>1 .. <name>n, all parked.
CREATE FUNCTION pg_temp.family(name text, n integer,
                               under text DEFAULT NULL,
                               policy text DEFAULT 'continue')
    RETURNS void LANGUAGE plpgsql
    AS $$BEGIN
        INSERT INTO ids SELECT name, job_id
            FROM batchjob_create_parent(jsonb_build_object('v', name), 'tap',
                     on_child_failure => policy,
                     parent_job_id => CASE WHEN under IS NOT NULL
                                           THEN pg_temp.jid(under) END);
        INSERT INTO ids SELECT name || s.batch_number, s.job_id
            FROM batchjob_split(pg_temp.jid(name), n * 10, 10) AS s;
        UPDATE batch_jobs SET run_at = 'infinity'
         WHERE status = 'PENDING' AND NOT is_parent;
    END$$;
-- Claims exactly the named (parked) job through batchjob_claim().
CREATE FUNCTION pg_temp.take(name text) RETURNS void LANGUAGE plpgsql
    AS $$DECLARE got bigint[];
    BEGIN
        UPDATE batch_jobs SET run_at = now() - interval '1 second'
         WHERE job_id = pg_temp.jid(name);
        SELECT array_agg(job_id) INTO got FROM batchjob_claim('tap', 1);
        IF got IS DISTINCT FROM ARRAY[pg_temp.jid(name)] THEN
            RAISE EXCEPTION 'take(%): claimed % instead', name, got;
        END IF;
    END$$;
-- Claims the named job, reports ok/bad records and completes it.
CREATE FUNCTION pg_temp.finish(name text, ok bigint, bad bigint)
    RETURNS void LANGUAGE plpgsql
    AS $$BEGIN
        PERFORM pg_temp.take(name);
        PERFORM batchjob_progress(pg_temp.jid(name), ok + bad, ok, bad, 'tap');
        PERFORM batchjob_complete(pg_temp.jid(name), 'tap');
    END$$;
-- Claims the named job and fails it for good.
CREATE FUNCTION pg_temp.broke(name text) RETURNS void LANGUAGE plpgsql
    AS $$BEGIN
        PERFORM pg_temp.take(name);
        PERFORM batchjob_fail(pg_temp.jid(name), 'broke', false, 'tap');
    END$$;
/*
 * Runs the SQL in "plant" (with the row guard and the rollup off unless
 * raw is false), returns what batchjob_verify() says then, and undoes
 * everything: the block's subtransaction is rolled back by the error it
 * raises at the end.  PL/pgSQL keeps the variable's value across that.
 */
CREATE FUNCTION pg_temp.verify_after(plant text, raw boolean DEFAULT true)
    RETURNS TABLE (job_id bigint, problem text) LANGUAGE plpgsql
    AS $$DECLARE found jsonb := '[]';
    BEGIN
        BEGIN
            IF raw THEN
                ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_guard;
                ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_rollup_insert;
                ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_rollup_update;
                ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_rollup_delete;
            END IF;
            EXECUTE plant;
            SELECT coalesce(jsonb_agg(jsonb_build_array(v.job_id, v.problem)
                                      ORDER BY v.job_id, v.problem), '[]')
              INTO found FROM batchjob_verify() v;
            RAISE EXCEPTION 'undo' USING ERRCODE = 'XBJ01';
        EXCEPTION WHEN SQLSTATE 'XBJ01' THEN
            NULL;
        END;
        RETURN QUERY SELECT (e ->> 0)::bigint, e ->> 1
                       FROM jsonb_array_elements(found) AS e;
    END$$;
-- Moves part of a parent's stored figures back into waiting differences,
-- as a deferred rollup would have left them; see the shapes below.
CREATE FUNCTION pg_temp.defer(name text, pending bigint, processing bigint,
                              completed bigint, failed bigint,
                              cancelled bigint, total bigint,
                              processed bigint, success bigint, errors bigint)
    RETURNS void LANGUAGE plpgsql
    AS $$BEGIN
        ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_guard;
        ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_rollup_update;
        UPDATE batch_jobs
           SET child_pending = child_pending - pending,
               child_processing = child_processing - processing,
               child_completed = child_completed - completed,
               child_failed = child_failed - failed,
               child_cancelled = child_cancelled - cancelled,
               total_records = total_records - total,
               processed_records = processed_records - processed,
               success_count = success_count - success,
               error_count = error_count - errors
         WHERE job_id = pg_temp.jid(name);
        INSERT INTO batch_job_deltas VALUES (pg_temp.jid(name), pending,
            processing, completed, failed, cancelled, total, processed,
            success, errors);
        ALTER TABLE batch_jobs ENABLE TRIGGER batch_jobs_guard;
        ALTER TABLE batch_jobs ENABLE TRIGGER batch_jobs_rollup_update;
    END$$;

SELECT function_returns('batchjob_verify', ARRAY[]::text[],
                        'setof record',
                        'batchjob_verify() returns a set of rows');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report on an empty table');

/* ---- healthy data of every shape ---------------------------------- */

-- F: a flat parent with children in every status.
SELECT pg_temp.family('F', 6);
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report right after a split');
SELECT pg_temp.finish('F1', 8, 2);
SELECT pg_temp.broke('F2');
SELECT pg_temp.take('F3');
SELECT FROM batchjob_progress(pg_temp.jid('F3'), 5, 5, 0, 'tap');
SELECT batchjob_cancel(pg_temp.jid('F4'));
SELECT is(pg_temp.st('F'), 'PROCESSING', 'F is PROCESSING: one child of each status');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report on a parent with a child in every status (a PROCESSING one under a lease)');

-- G all completed, H all failed, C cancelled as a whole.
SELECT pg_temp.family('G', 3);
SELECT pg_temp.finish('G' || n, 10, 0) FROM generate_series(1, 3) AS n;
SELECT pg_temp.family('H', 2);
SELECT pg_temp.broke('H' || n) FROM generate_series(1, 2) AS n;
SELECT pg_temp.family('C', 3);
SELECT batchjob_cancel(pg_temp.jid('C'));
SELECT results_eq(
    $$SELECT pg_temp.st('G'), pg_temp.st('H'), pg_temp.st('C')$$,
    $$VALUES ('COMPLETED', 'FAILED', 'CANCELLED')$$,
    'G COMPLETED, H FAILED, C CANCELLED');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report on finished parents (completed, failed, cancelled)');

-- N: a root over N1 (finished), N2 (fail_fast, failed) and N3 (no children).
SELECT pg_temp.family('N', 0);
SELECT pg_temp.family('N1', 3, 'N');
SELECT pg_temp.family('N2', 3, 'N', 'fail_fast');
INSERT INTO ids SELECT 'N3', job_id
    FROM batchjob_create_parent('{"v": "N3"}', 'tap', parent_job_id => pg_temp.jid('N'));
SELECT pg_temp.finish('N1' || n, 9, 1) FROM generate_series(1, 3) AS n;
SELECT pg_temp.take('N21');
SELECT pg_temp.broke('N22');
SELECT results_eq(
    $$SELECT pg_temp.st('N'), pg_temp.st('N1'), pg_temp.st('N2'), pg_temp.st('N3'), pg_temp.st('N21')$$,
    $$VALUES ('PROCESSING', 'COMPLETED', 'FAILED', 'PENDING', 'CANCELLED')$$,
    'nested: N PROCESSING over N1 COMPLETED, N2 FAILED (fail_fast cancelled N21), N3 PENDING without children');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report on nested parents');

-- Z split into nothing, E a parent without children, L a lone leaf that
-- is PROCESSING, M a lone leaf made PROCESSING by plain SQL.
INSERT INTO ids SELECT 'Z', job_id FROM batchjob_create_parent('{"v": "Z"}', 'tap');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('Z'), 0, 10)), 0::bigint,
          'a split of 0 records makes no child');
INSERT INTO ids SELECT 'E', job_id
    FROM batchjob_create_parent('{"v": "E"}', 'tap', total_records => 70);
WITH l AS (INSERT INTO batch_jobs (criteria, total_records, run_at)
           VALUES ('{"v": "L"}', 10, 'infinity') RETURNING job_id)
INSERT INTO ids SELECT 'L', job_id FROM l;
WITH m AS (INSERT INTO batch_jobs (criteria, total_records, run_at)
           VALUES ('{"v": "M"}', 10, 'infinity') RETURNING job_id)
INSERT INTO ids SELECT 'M', job_id FROM m;
SELECT pg_temp.take('L');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('M');
SELECT isnt((SELECT locked_until FROM batch_jobs WHERE job_id = pg_temp.jid('M')), NULL,
            'a job made PROCESSING by plain SQL gets a lease from the guard');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report on a parent split into nothing, a parent without children and lone leaves');

-- A retry reopens F and H.
SELECT FROM batchjob_retry(pg_temp.jid('F2'));
SELECT FROM batchjob_retry(pg_temp.jid('H'));
SELECT results_eq(
    $$SELECT pg_temp.st('F2'), pg_temp.st('F'), pg_temp.st('H')$$,
    $$VALUES ('PENDING', 'PROCESSING', 'PROCESSING')$$,
    'retried: F2 PENDING, F and H PROCESSING again');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report after retries');

/*
 * Waiting differences.  Each call of pg_temp.defer() moves part of a
 * parent's stored figures into batch_job_deltas, leaving the parent as a
 * deferred rollup would.  F: F5's claim and completion wait, as two
 * differences (pending -> processing, processing -> completed).
 */
UPDATE batch_jobs SET run_at = 'infinity' WHERE status = 'PENDING' AND NOT is_parent;
SELECT pg_temp.finish('F5', 10, 0);
SELECT pg_temp.defer('F', -1, 1, 0, 0, 0, 0, 0, 0, 0);
SELECT pg_temp.defer('F', 0, -1, 1, 0, 0, 0, 10, 10, 0);
-- K: a parent whose last child's completion waits, so that its stored row
-- still says PROCESSING while all its children are finished.
SELECT pg_temp.family('K', 2);
SELECT pg_temp.finish('K1', 10, 0);
SELECT pg_temp.finish('K2', 10, 0);
SELECT pg_temp.defer('K', 0, -1, 1, 0, 0, 0, 10, 10, 0);
ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_guard;
UPDATE batch_jobs SET status = 'PROCESSING', completed_at = NULL
 WHERE job_id = pg_temp.jid('K');
ALTER TABLE batch_jobs ENABLE TRIGGER batch_jobs_guard;
-- Q: a parent with figures of its own (total_records 500) whose first
-- children's rollup waits entirely: the children replace its figures.
INSERT INTO ids SELECT 'Q', job_id
    FROM batchjob_create_parent('{"v": "Q"}', 'tap', total_records => 500);
SELECT count(*) FROM batchjob_split(pg_temp.jid('Q'), 30, 10);
SELECT pg_temp.defer('Q', 3, 0, 0, 0, 0, 30, 0, 0, 0);
UPDATE batch_jobs SET total_records = 500
 WHERE job_id = pg_temp.jid('Q');
-- N: the root has not seen N2 fail yet (N2's own row is final).
SELECT pg_temp.defer('N', 0, -1, 0, 1, 0, 0, 0, 0, 0);
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM batch_job_deltas),
             pg_temp.st('K'),
             (SELECT total_records FROM batch_jobs WHERE job_id = pg_temp.jid('Q'))$$,
    $$VALUES (5::bigint, 'PROCESSING', 500::bigint)$$,
    'planted: 5 waiting differences; K''s stored row says PROCESSING, Q''s total is its own 500');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report when waiting differences make up what the stored rows lack (flat, nested, first children, a finish still waiting)');
SELECT results_eq(
    $$SELECT c.completed, c.pending FROM batchjob_child_counts(pg_temp.jid('F')) c$$,
    $$VALUES (2::bigint, 2::bigint)$$,
    'batchjob_child_counts agrees with the waiting differences of F');
SELECT results_eq(
    $$SELECT f.total_records::bigint, p.total_records, f.waiting, f.children
        FROM batch_job_figures f JOIN batch_job_progress p USING (job_id)
       WHERE job_id = pg_temp.jid('Q')$$,
    $$VALUES (30::bigint, 30::bigint, 1::bigint, 3::bigint)$$,
    'batch_job_figures and batch_job_progress: Q''s first children replace its own total of 500');

/* ---- every kind of corruption, one at a time ---------------------- */

-- X: a flat parent with X1 completed (8 ok, 2 failed records), X2
-- PROCESSING (5 records done), X3 and X4 PENDING: 2/1/1/0/0, 40/15/13/2.
SELECT pg_temp.family('X', 4);
SELECT pg_temp.finish('X1', 8, 2);
SELECT pg_temp.take('X2');
SELECT FROM batchjob_progress(pg_temp.jid('X2'), 5, 5, 0, 'tap');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: still nothing to report before the corruptions');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET child_completed = child_completed + 1
         WHERE job_id = pg_temp.jid('X') $p$)$$,
    $$VALUES (pg_temp.jid('X'),
              'child counts 2/1/2/0/0 (pending/processing/completed/failed/cancelled, with 0 waiting differences) but its children are 2/1/1/0/0')$$,
    'corruption: a wrong child count is reported, with the stored and the real counts');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET child_pending = child_pending - 1,
                              child_processing = child_processing + 1
         WHERE job_id = pg_temp.jid('X') $p$)$$,
    $$VALUES (pg_temp.jid('X'),
              'child counts 1/2/1/0/0 (pending/processing/completed/failed/cancelled, with 0 waiting differences) but its children are 2/1/1/0/0')$$,
    'corruption: child counts with the right total but a child in the wrong column');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_job_deltas SET child_completed = child_completed + 1
         WHERE parent_job_id = pg_temp.jid('F') AND child_completed = 1 $p$)$$,
    $$VALUES (pg_temp.jid('F'),
              'child counts 2/1/3/0/1 (pending/processing/completed/failed/cancelled, with 2 waiting differences) but its children are 2/1/2/0/1')$$,
    'corruption: a wrong waiting difference is reported, counted with the stored figures');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET processed_records = processed_records + 3
         WHERE job_id = pg_temp.jid('X') $p$)$$,
    $$VALUES (pg_temp.jid('X'),
              'figures 40/18/13/2 (total/processed/success/errors, with waiting differences) but its children sum to 40/15/13/2')$$,
    'corruption: a wrong processed_records sum is reported');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET total_records = NULL, error_count = 0
         WHERE job_id = pg_temp.jid('X') $p$)$$,
    $$VALUES (pg_temp.jid('X'),
              'figures 0/15/13/0 (total/processed/success/errors, with waiting differences) but its children sum to 40/15/13/2')$$,
    'corruption: a lost total_records and a wrong error_count are reported in one row');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_job_deltas SET total_records = 31
         WHERE parent_job_id = pg_temp.jid('Q') $p$)$$,
    $$VALUES (pg_temp.jid('Q'),
              'figures 31/0/0/0 (total/processed/success/errors, with waiting differences) but its children sum to 30/0/0/0')$$,
    'corruption: a wrong first-children difference is reported (the parent''s own figures do not count)');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET status = 'COMPLETED', completed_at = now()
         WHERE job_id = pg_temp.jid('X') $p$)$$,
    $$VALUES (pg_temp.jid('X'), 'status COMPLETED while 3 of its children are unfinished')$$,
    'corruption: a finished parent with unfinished children is reported');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET status = 'PROCESSING', completed_at = NULL
         WHERE job_id = pg_temp.jid('G') $p$)$$,
    $$VALUES (pg_temp.jid('G'), 'status PROCESSING while all 3 of its children are finished')$$,
    'corruption: an unfinished parent whose children are all finished is reported');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET status = 'PENDING', completed_at = NULL
         WHERE job_id = pg_temp.jid('N1') $p$)$$,
    $$VALUES (pg_temp.jid('N'),
              'child counts 1/0/1/1/0 (pending/processing/completed/failed/cancelled, with 1 waiting differences) but its children are 2/0/0/1/0'),
             (pg_temp.jid('N1'), 'status PENDING while all 3 of its children are finished')$$,
    'corruption: a nested parent with a wrong status is reported, and so is its root, which counts it as COMPLETED');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        DELETE FROM batch_job_deltas WHERE parent_job_id = pg_temp.jid('K') $p$)$$,
    $$VALUES (pg_temp.jid('K'),
              'child counts 0/1/1/0/0 (pending/processing/completed/failed/cancelled, with 0 waiting differences) but its children are 0/0/2/0/0'),
             (pg_temp.jid('K'),
              'figures 20/10/10/0 (total/processed/success/errors, with waiting differences) but its children sum to 20/20/20/0'),
             (pg_temp.jid('K'), 'status PROCESSING while all 2 of its children are finished')$$,
    'corruption: a lost waiting difference is reported (counts, figures, and the status it would have finished)');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET locked_until = NULL
         WHERE job_id = pg_temp.jid('X2') $p$)$$,
    $$VALUES (pg_temp.jid('X2'), 'PROCESSING without a lease')$$,
    'corruption: a PROCESSING leaf without a lease is reported');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET locked_until = NULL, locked_by = NULL
         WHERE job_id = pg_temp.jid('M') $p$)$$,
    $$VALUES (pg_temp.jid('M'), 'PROCESSING without a lease')$$,
    'corruption: a lone PROCESSING job without a lease is reported');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET is_parent = false
         WHERE job_id = pg_temp.jid('G') $p$)$$,
    $$VALUES (pg_temp.jid('G'), 'has children but is not a parent')$$,
    'corruption: a parent turned into a non-parent while it has children is reported');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET parent_job_id = pg_temp.jid('X3')
         WHERE job_id = pg_temp.jid('X4') $p$)$$,
    $$VALUES (pg_temp.jid('X'),
              'child counts 2/1/1/0/0 (pending/processing/completed/failed/cancelled, with 0 waiting differences) but its children are 1/1/1/0/0'),
             (pg_temp.jid('X'),
              'figures 40/15/13/2 (total/processed/success/errors, with waiting differences) but its children sum to 30/15/13/2'),
             (pg_temp.jid('X3'), 'has children but is not a parent')$$,
    'corruption: a leaf moved under another leaf is reported, with the counts its parent lost');

INSERT INTO ids SELECT 'nobody', max(job_id) + 1000 FROM batch_jobs;
SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        INSERT INTO batch_job_deltas
        VALUES (pg_temp.jid('nobody'), 0, 0, 1, 0, 0, 10, 10, 10, 0) $p$)$$,
    $$VALUES (pg_temp.jid('nobody'), 'waiting differences for a job that does not exist')$$,
    'corruption: an orphan waiting difference is reported');

SELECT results_eq(
    $$SELECT * FROM pg_temp.verify_after($p$
        UPDATE batch_jobs SET child_failed = child_failed + 1
         WHERE job_id = pg_temp.jid('E');
        UPDATE batch_jobs SET locked_until = NULL
         WHERE job_id = pg_temp.jid('L') $p$)$$,
    $$VALUES (pg_temp.jid('E'),
              'child counts 0/0/0/1/0 (pending/processing/completed/failed/cancelled, with 0 waiting differences) but its children are 0/0/0/0/0'),
             (pg_temp.jid('L'), 'PROCESSING without a lease')$$,
    'corruption: several at once, one row each, ordered by job');

SELECT is_empty(
    $$SELECT * FROM pg_temp.verify_after($p$
        ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_guard;
        ALTER TABLE batch_jobs DISABLE TRIGGER batch_jobs_rollup_update;
        UPDATE batch_jobs SET child_completed = 7, success_count = 0
         WHERE job_id = pg_temp.jid('X');
        ALTER TABLE batch_jobs ENABLE TRIGGER batch_jobs_guard;
        ALTER TABLE batch_jobs ENABLE TRIGGER batch_jobs_rollup_update;
        SELECT batchjob_refresh_parent(pg_temp.jid('X')) $p$, false)$$,
    'batchjob_refresh_parent repairs what verify reports');

SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report once every planted corruption is undone');

/* ---- folding the waiting differences ------------------------------ */

-- the figures the view adds up from what waits, for the fold to store
CREATE TEMP TABLE figures_before AS
    SELECT job_id, pending, processing, completed, failed, cancelled,
           total_records::bigint, processed_records::bigint,
           success_count::bigint, error_count::bigint
      FROM batch_job_figures;
SELECT is(batchjob_fold(), 4::bigint, 'batchjob_fold() folds the planted differences into their 4 parents (F, K, N, Q)');
SELECT results_eq(
    $$SELECT (SELECT count(*) FROM batch_job_deltas), pg_temp.st('K'), pg_temp.st('N'),
             (SELECT total_records FROM batch_jobs WHERE job_id = pg_temp.jid('Q'))$$,
    $$VALUES (0::bigint, 'COMPLETED', 'PROCESSING', 30::bigint)$$,
    'after the fold: no difference waits, K COMPLETED, N still PROCESSING, Q''s total is its children''s');
SELECT is_empty('SELECT * FROM batchjob_verify()',
                'verify: nothing to report after the fold');
SELECT set_eq(
    'SELECT * FROM figures_before',
    $$SELECT job_id, child_pending, child_processing, child_completed, child_failed,
             child_cancelled, total_records, processed_records, success_count, error_count
        FROM batch_jobs WHERE is_parent$$,
    'the fold stores exactly the figures batch_job_figures showed before it (C and SQL agree on the rule)');

-- batchjob_child_total is inlined: the view costs what the sum written out costs
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql
    AS $$DECLARE l text; r text := '';
    BEGIN
        FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
            r := r || l || E'\n';
        END LOOP;
        RETURN r;
    END$$;
SELECT unalike(pg_temp.plan_of($$SELECT * FROM batch_job_progress WHERE job_id = 1$$),
              '%batchjob_child_total%',
              'batch_job_progress: batchjob_child_total is inlined, not called per row');

-- every parent, refreshed from its children, stays as it is
CREATE TEMP TABLE before_refresh AS
    SELECT job_id, status, error_details, total_records, processed_records,
           success_count, error_count, child_pending, child_processing,
           child_completed, child_failed, child_cancelled
      FROM batch_jobs WHERE is_parent;
SELECT count(batchjob_refresh_parent(job_id))
  FROM (SELECT job_id FROM batch_jobs WHERE is_parent
         ORDER BY parent_job_id IS NULL, job_id) p;
SELECT set_eq(
    'SELECT * FROM before_refresh',
    $$SELECT job_id, status, error_details, total_records, processed_records,
             success_count, error_count, child_pending, child_processing,
             child_completed, child_failed, child_cancelled
        FROM batch_jobs WHERE is_parent$$,
    'batchjob_refresh_parent changes no parent that verify passes');

SELECT * FROM finish();
ROLLBACK;
