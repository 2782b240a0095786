/*
 * test/bad_input.sql - pgTAP: hostile and malformed input at every
 * function and at the table itself.
 *
 * - NULL in every argument position: 22004, or the documented meaning of
 *   NULL (an unknown total, the parent's criteria, any worker, every
 *   parent).
 * - Huge (1 MB) and deeply nested criteria; text that looks like SQL.
 * - Numbers at and past the int and bigint limits; a parent whose sums
 *   would pass the bigint range (22003, never a wrapped value), directly
 *   and through nesting.
 * - Unknown statuses (23514); cycles through parent_job_id, direct and
 *   through nesting (22023, 23514 for a job that is its own parent).
 * - Children moved between parents by plain UPDATE; a parent deleted while
 *   its children are claimed; a parent of 100,000 children cancelled in
 *   one call.
 * After each part, batchjob_verify() must report nothing.
 *
 * Like test/lifecycle.sql, the file starts from an empty table and keeps
 * every PENDING job it is not about to claim parked (run_at = 'infinity').
 */
BEGIN;
SELECT plan(179);
\ir pgtap/fixture.sql

CREATE FUNCTION pg_temp.job(text) RETURNS batch_jobs LANGUAGE sql STABLE
    AS $$ SELECT * FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;
-- A parent named name with n children of size records each (name1..namen).
CREATE FUNCTION pg_temp.family(name text, n integer, size integer DEFAULT 10)
    RETURNS void LANGUAGE plpgsql
    AS $$BEGIN
        INSERT INTO ids SELECT name, job_id
            FROM batchjob_create_parent(jsonb_build_object('t', name), 'bad');
        INSERT INTO ids SELECT name || batch_number, job_id
            FROM batchjob_split(pg_temp.jid(name), n::bigint * size, size);
    END$$;
-- A plain row, inserted as plain SQL does it; returns its id.
CREATE FUNCTION pg_temp.row(name text, parent text, parent_flag boolean,
                            total bigint DEFAULT NULL)
    RETURNS void LANGUAGE plpgsql
    AS $$DECLARE i bigint;
    BEGIN
        INSERT INTO batch_jobs (created_by, is_parent, parent_job_id, total_records)
            VALUES ('bad', parent_flag,
                    CASE WHEN parent IS NOT NULL THEN pg_temp.jid(parent) END, total)
            RETURNING job_id INTO i;
        INSERT INTO ids VALUES (name, i);
    END$$;
-- Runs a statement that returns one value, as text, or the error it raised
-- (for calls that must not fail: a failure is reported, not fatal).
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql
    AS $$DECLARE r text;
    BEGIN
        EXECUTE sql INTO r;
        RETURN r;
    EXCEPTION WHEN OTHERS THEN
        RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
    END$$;
-- Keeps every PENDING leaf but the ones named from being claimed.
CREATE FUNCTION pg_temp.park(but text[] DEFAULT '{}') RETURNS void LANGUAGE sql
    AS $$ UPDATE batch_jobs SET run_at = 'infinity'
           WHERE status = 'PENDING' AND NOT is_parent AND run_at <> 'infinity';
          UPDATE batch_jobs SET run_at = now() - interval '1 second'
           WHERE job_id IN (SELECT id FROM ids WHERE name = ANY (but)) $$;
-- Claims exactly the jobs named, for worker, and raises otherwise.
CREATE FUNCTION pg_temp.take(names text[], worker text) RETURNS void LANGUAGE plpgsql
    AS $$DECLARE got bigint[];
    BEGIN
        PERFORM pg_temp.park(names);
        SELECT array_agg(job_id ORDER BY job_id) INTO got
          FROM batchjob_claim(worker, cardinality(names));
        IF got IS DISTINCT FROM ARRAY(SELECT id FROM ids WHERE name = ANY (names)
                                      ORDER BY id) THEN
            RAISE EXCEPTION 'take(%): claimed % instead', names, got;
        END IF;
    END$$;
-- The whole table as one value: what a refused call must leave alone.
CREATE FUNCTION pg_temp.everything() RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT coalesce(jsonb_agg(to_jsonb(j) ORDER BY j.job_id), '[]')
            FROM batch_jobs j $$;
CREATE TEMP TABLE snap (name text PRIMARY KEY, v jsonb);
CREATE FUNCTION pg_temp.snap(text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO snap VALUES ($1, pg_temp.everything()) $$;
CREATE FUNCTION pg_temp.unchanged(text) RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT pg_temp.everything() = v FROM snap WHERE name = $1 $$;
-- A parent's stored figures and child counters, for comparisons.
CREATE FUNCTION pg_temp.figures(text) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT format('%s total=%s processed=%s success=%s errors=%s counts=%s/%s/%s/%s/%s',
                        status, total_records, processed_records, success_count,
                        error_count, child_pending, child_processing,
                        child_completed, child_failed, child_cancelled)
            FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;

/* ---- NULL in every position ---- */

SELECT pg_temp.family('n', 2);
SELECT pg_temp.snap('nulls');
SELECT throws_ok($$SELECT batchjob_create_parent(NULL, 'x')$$,
    '22004', 'criteria must not be null', 'create_parent: NULL criteria (22004)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', NULL)$$,
    '22004', 'created_by must not be null', 'create_parent: NULL created_by (22004)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'x', NULL)$$,
    '22004', 'priority must not be null', 'create_parent: NULL priority (22004)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'x', 0, NULL, NULL)$$,
    '22004', 'on_child_failure must not be null', 'create_parent: NULL on_child_failure (22004)');
SELECT throws_ok($$SELECT batchjob_create_child(NULL, 1, 0, 10)$$,
    '22004', 'parent_job_id must not be null', 'create_child: NULL parent_job_id (22004)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('n'), NULL, 0, 10)$$,
    '22004', 'batch_number must not be null', 'create_child: NULL batch_number (22004)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('n'), 3, NULL, 10)$$,
    '22004', 'batch_offset must not be null', 'create_child: NULL batch_offset (22004)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('n'), 3, 20, NULL)$$,
    '22004', 'batch_size must not be null', 'create_child: NULL batch_size (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_split(NULL, 10, 5)$$,
    '22004', 'parent_job_id must not be null', 'split: NULL parent_job_id (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('n'), NULL, 5)$$,
    '22004', 'total_records must not be null', 'split: NULL total_records (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('n'), 10, NULL)$$,
    '22004', 'batch_size must not be null', 'split: NULL batch_size (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_children(NULL)$$,
    '22004', 'parent_job_id must not be null', 'children: NULL parent_job_id (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_child_counts(NULL)$$,
    '22004', 'parent_job_id must not be null', 'child_counts: NULL parent_job_id (22004)');
SELECT throws_ok($$SELECT batchjob_refresh_parent(NULL)$$,
    '22004', 'parent_job_id must not be null', 'refresh_parent: NULL parent_job_id (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_claim(NULL)$$,
    '22004', 'worker must not be null', 'claim: NULL worker (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', NULL)$$,
    '22004', 'max_jobs must not be null', 'claim: NULL max_jobs (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1, NULL)$$,
    '22004', 'lease must not be null', 'claim: NULL lease (22004)');
SELECT throws_ok($$SELECT batchjob_heartbeat(NULL, 'w')$$,
    '22004', 'job_id must not be null', 'heartbeat: NULL job_id (22004)');
SELECT throws_ok($$SELECT batchjob_heartbeat(pg_temp.jid('n1'), NULL)$$,
    '22004', 'worker must not be null', 'heartbeat: NULL worker (22004)');
SELECT throws_ok($$SELECT batchjob_heartbeat(pg_temp.jid('n1'), 'w', NULL)$$,
    '22004', 'lease must not be null', 'heartbeat: NULL lease (22004)');
SELECT throws_ok($$SELECT batchjob_progress(NULL, 1, 1, 0)$$,
    '22004', 'job_id must not be null', 'progress: NULL job_id (22004)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('n1'), NULL, 1, 0)$$,
    '22004', 'processed must not be null', 'progress: NULL processed (22004)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('n1'), 1, NULL, 0)$$,
    '22004', 'succeeded must not be null', 'progress: NULL succeeded (22004)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('n1'), 1, 1, NULL)$$,
    '22004', 'failed must not be null', 'progress: NULL failed (22004)');
SELECT throws_ok($$SELECT batchjob_complete(NULL::bigint)$$,
    '22004', 'job_id must not be null', 'complete: NULL job_id (22004)');
SELECT throws_ok($$SELECT batchjob_fail(NULL::bigint, 'x')$$,
    '22004', 'job_id must not be null', 'fail: NULL job_id (22004)');
SELECT throws_ok($$SELECT batchjob_fail(pg_temp.jid('n1'), 'x', NULL)$$,
    '22004', 'retry must not be null', 'fail: NULL retry (22004)');
SELECT throws_ok($$SELECT batchjob_complete(NULL::bigint[])$$,
    '22004', 'job_ids must not be null', 'complete(job_ids): NULL array (22004)');
SELECT throws_ok($$SELECT batchjob_fail(NULL::bigint[], 'x')$$,
    '22004', 'job_ids must not be null', 'fail(job_ids): NULL array (22004)');
SELECT throws_ok($$SELECT batchjob_fail(ARRAY[pg_temp.jid('n1')], 'x', NULL)$$,
    '22004', 'retry must not be null', 'fail(job_ids): NULL retry (22004)');
SELECT throws_ok($$SELECT batchjob_retry(NULL)$$,
    '22004', 'job_id must not be null', 'retry: NULL job_id (22004)');
SELECT throws_ok($$SELECT batchjob_cancel(NULL)$$,
    '22004', 'job_id must not be null', 'cancel: NULL job_id (22004)');
SELECT ok(pg_temp.unchanged('nulls'), 'NULLs: the refused calls changed nothing');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                  JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
                 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'batchjob')
                   AND p.proisstrict),
    ARRAY[]::text[], 'NULLs: no function is STRICT (none answers NULL input with a silent NULL)');

-- the NULLs that mean something
SELECT results_eq(
    $$SELECT total_records, parent_job_id, is_parent
        FROM batchjob_create_parent('{}', 'x', 0, NULL, 'continue', NULL)$$,
    $$VALUES (NULL::bigint, NULL::bigint, true)$$,
    'create_parent: NULL total_records and parent_job_id make a top-level parent of unknown size');
UPDATE batch_jobs SET priority = 7 WHERE job_id = pg_temp.jid('n');
SELECT results_eq(
    $$SELECT criteria, priority, created_by
        FROM batchjob_create_child(pg_temp.jid('n'), 3, 20, 10, NULL, NULL)$$,
    $$VALUES ('{"t": "n"}'::jsonb, 7, 'bad'::text)$$,
    'create_child: NULL criteria and priority take the parent''s');
INSERT INTO ids SELECT 'n3', job_id FROM batch_jobs
 WHERE parent_job_id = pg_temp.jid('n') AND batch_number = 3;
SELECT is(batchjob_fold(NULL), 0::bigint,
    'fold: NULL means every parent (nothing waits here)');
SELECT pg_temp.take('{n1, n2}', 'wn');
SELECT is((batchjob_progress(pg_temp.jid('n1'), 3, 3, 0, NULL)).processed_records, 3::bigint,
    'progress: a NULL worker lets any holder report');
SELECT is((batchjob_complete(pg_temp.jid('n1'), NULL)).status, 'COMPLETED',
    'complete: a NULL worker lets any holder complete');
SELECT results_eq(
    $$SELECT status, error_details FROM batchjob_fail(pg_temp.jid('n2'), NULL, false, NULL)$$,
    $$VALUES ('FAILED'::text, NULL::text)$$,
    'fail: NULL error_details and worker are accepted; the job fails without details');
SELECT is(batchjob_complete(ARRAY[NULL, NULL]::bigint[]), 0::bigint,
    'complete(job_ids): NULL ids are ignored');
SELECT is(batchjob_complete('{}'::bigint[]), 0::bigint,
    'complete(job_ids): an empty array changes nothing');
SELECT is(batchjob_fail('{}'::bigint[], 'x'), 0::bigint,
    'fail(job_ids): an empty array changes nothing');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'NULLs: verify finds nothing wrong');

/* ---- huge and deeply nested criteria, text that looks like SQL ---- */

CREATE TEMP TABLE big AS
    SELECT (SELECT jsonb_agg(repeat(chr(65 + i % 26), 1000)) FROM generate_series(1, 1000) i) AS v;
SELECT cmp_ok(octet_length((SELECT v FROM big)::text), '>', 1000000,
    'criteria: the big document is over 1 MB of JSON');
INSERT INTO ids SELECT 'big', job_id FROM batchjob_create_parent((SELECT v FROM big), 'bad');
SELECT ok((pg_temp.job('big')).criteria = (SELECT v FROM big),
    'criteria: a 1 MB document is stored whole');
SELECT is((SELECT count(*) FILTER (WHERE criteria = (SELECT v FROM big))
             FROM batchjob_split(pg_temp.jid('big'), 30, 10)),
    3::bigint, 'criteria: the children of a split inherit the 1 MB document');

CREATE TEMP TABLE deep AS
    SELECT (repeat('{"a": [', 5000) || '"bottom"' || repeat(']}', 5000))::jsonb AS v;
INSERT INTO ids SELECT 'deep', job_id FROM batchjob_create_parent((SELECT v FROM deep), 'bad');
SELECT ok((pg_temp.job('deep')).criteria = (SELECT v FROM deep),
    'criteria: a document nested 10,000 levels deep is stored whole');
SELECT is((SELECT count(*) FILTER (WHERE criteria = (SELECT v FROM deep))
             FROM batchjob_split(pg_temp.jid('deep'), 20, 10)),
    2::bigint, 'criteria: the children of a split inherit the deep document');
SELECT is((SELECT criteria #>> (SELECT array_agg(CASE WHEN i % 2 = 0 THEN 'a' ELSE '0' END)
                                  FROM generate_series(0, 9999) i)
             FROM batch_jobs WHERE job_id = pg_temp.jid('deep')),
    'bottom', 'criteria: ... and its innermost value is still there');
SELECT pg_temp.snap('too deep');
SELECT throws_ok(
    $$SELECT batchjob_create_parent((repeat('[', 100000) || repeat(']', 100000))::jsonb, 'bad')$$,
    '54001', NULL,
    'criteria: 100,000 levels pass PostgreSQL''s stack depth limit (54001, from the jsonb parser)');
SELECT ok(pg_temp.unchanged('too deep'), 'criteria: ... and no job was created');
SELECT is((batchjob_create_parent('null', 'bad')).criteria, 'null'::jsonb,
    'criteria: a JSON null (not an SQL NULL) is a document like any other');

INSERT INTO ids SELECT 'sqlish', job_id
    FROM batchjob_create_parent('{"q": "''); DROP TABLE batch_jobs; --"}',
                                $$x'); DELETE FROM batch_jobs; --$$);
SELECT is((pg_temp.job('sqlish')).created_by, $$x'); DELETE FROM batch_jobs; --$$,
    'text: a created_by that looks like SQL is stored verbatim');
SELECT pg_temp.family('hostile', 1);
UPDATE batch_jobs SET max_attempts = 1 WHERE job_id = pg_temp.jid('hostile1');
SELECT pg_temp.park('{hostile1}');
SELECT is((SELECT locked_by FROM batchjob_claim($$w'; UPDATE batch_jobs SET status = 'FAILED'; --$$,
                                                1, '1 microsecond')),
    $$w'; UPDATE batch_jobs SET status = 'FAILED'; --$$,
    'text: a worker name that looks like SQL is stored verbatim as locked_by');
SELECT is(batchjob_reap(), 1::bigint, 'text: its 1-microsecond lease has expired and is reaped');
SELECT is((pg_temp.job('hostile1')).error_details,
    $$lease of worker w'; UPDATE batch_jobs SET status = 'FAILED'; --$$ || ' expired on attempt 1 of 1',
    'text: ... and the reap message quotes the name verbatim');
SELECT set_eq($$SELECT job_id FROM batch_jobs WHERE status = 'FAILED'$$,
    $$SELECT id FROM ids WHERE name IN ('n2', 'hostile1', 'hostile')$$,
    'text: nothing but n2, hostile1 and its parent is FAILED');
SELECT is(length((batchjob_create_parent('{}', repeat('é', 500000))).created_by), 500000,
    'text: a 1 MB created_by is stored whole');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'criteria and text: verify finds nothing wrong');

/* ---- numbers at and past the limits ---- */

SELECT pg_temp.snap('numbers');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'x', 0, -1)$$,
    '22023', 'total_records must not be negative: -1', 'create_parent: a negative total (22023)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'x', 0, '-9223372036854775808'::bigint)$$,
    '22023', 'total_records must not be negative: -9223372036854775808',
    'create_parent: the smallest bigint as total (22023)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('n'), 4, 30, 0)$$,
    '22023', 'batch_size must be positive: 0', 'create_child: batch_size 0 (22023)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('n'), 4, 30, '-2147483648'::integer)$$,
    '22023', 'batch_size must be positive: -2147483648', 'create_child: the smallest int as batch_size (22023)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('n'), 4, -1, 10)$$,
    '22023', 'batch_offset must not be negative: -1', 'create_child: a negative batch_offset (22023)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('n'), -1, 30, 10)$$,
    '22023', 'batch_number must not be negative: -1', 'create_child: a negative batch_number (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('big'), -1, 10)$$,
    '22023', 'total_records must not be negative: -1', 'split: a negative total (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('big'), 10, 0)$$,
    '22023', 'batch_size must be positive: 0', 'split: batch_size 0 (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('big'), 10, -5)$$,
    '22023', 'batch_size must be positive: -5', 'split: a negative batch_size (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('n'), 9223372036854775807, 1)$$,
    '22023', 'total_records must be at most 281474976710656: 9223372036854775807',
    'split: the largest bigint is past the total_records bound (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('n'), 281474976710656, 2147483647)$$,
    '22023', 'splitting 281474976710656 records into batches of 2147483647 needs 131073 batches, more than the 100000 one split may create',
    'split: the largest total in the largest batches still needs more than 100000 batches (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 0)$$,
    '22023', 'max_jobs must be between 1 and 1000: 0', 'claim: max_jobs 0 (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', '-2147483648'::integer)$$,
    '22023', 'max_jobs must be between 1 and 1000: -2147483648', 'claim: the smallest int as max_jobs (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1, '-1 microsecond')$$,
    '22023', NULL, 'claim: a negative lease (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1, '1 month -30 days')$$,
    '22023', NULL, 'claim: a lease that adds up to zero (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1, '-178000000 years')$$,
    '22023', NULL, 'claim: the most negative interval as lease (22023)');
SELECT throws_ok($$SELECT batchjob_heartbeat(pg_temp.jid('n1'), 'w', '-1 second')$$,
    '22023', NULL, 'heartbeat: a negative lease (22023)');
SELECT ok(pg_temp.unchanged('numbers'), 'numbers: the refused calls changed nothing');

SELECT results_eq(
    $$SELECT total_records, priority
        FROM batchjob_create_parent('{}', 'x', 2147483647, 281474976710656)$$,
    $$VALUES (281474976710656::bigint, 2147483647)$$,
    'create_parent: the largest total and priority are accepted');
SELECT is((batchjob_create_parent('{}', 'x', '-2147483648'::integer)).priority, -2147483648,
    'create_parent: the smallest priority is accepted');
INSERT INTO ids SELECT 'edge', job_id FROM batchjob_create_parent('{}', 'bad');
SELECT results_eq(
    $$SELECT batch_number, batch_offset, batch_size, total_records
        FROM batchjob_create_child(pg_temp.jid('edge'), 2147483647, 9223372036854775807, 2147483647)$$,
    $$VALUES (2147483647, 9223372036854775807::bigint, 2147483647, 2147483647::bigint)$$,
    'create_child: the largest batch_number, batch_offset and batch_size are accepted');
INSERT INTO ids SELECT 'one', job_id FROM batchjob_create_parent('{}', 'bad');
SELECT results_eq(
    $$SELECT batch_number, batch_offset, batch_size FROM batchjob_split(pg_temp.jid('one'), 5, 2147483647)$$,
    $$VALUES (1, 0::bigint, 5)$$,
    'split: 5 records in batches of 2147483647 make one batch of 5');
INSERT INTO ids SELECT 'zero', job_id FROM batchjob_create_parent('{}', 'bad');
SELECT is_empty($$SELECT * FROM batchjob_split(pg_temp.jid('zero'), 0, 2147483647)$$,
    'split: 0 records make no batch');
SELECT is((pg_temp.job('zero')).total_records, 0::bigint, 'split: ... and record a total of 0');

-- progress figures
SELECT pg_temp.family('f', 1);
SELECT pg_temp.take('{f1}', 'wf');
SELECT pg_temp.snap('figures');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('f1'), -1, 0, 0)$$,
    '23514', NULL, 'progress: negative processed (23514)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('f1'), 1, '-9223372036854775808'::bigint, 0)$$,
    '23514', NULL, 'progress: the smallest bigint as succeeded (23514)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('f1'), 1, 0, -1)$$,
    '23514', NULL, 'progress: negative failed (23514)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('f1'), 11, 11, 0)$$,
    '23514', NULL, 'progress: processed above the job''s total of 10 (23514)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('f1'), 9223372036854775807, 0, 0)$$,
    '23514', NULL, 'progress: the largest bigint as processed, above the total (23514)');
SELECT throws_ok($$SELECT batchjob_progress('-9223372036854775808'::bigint, 1, 1, 0)$$,
    'P0002', 'job -9223372036854775808 does not exist', 'progress: the smallest bigint as job_id (P0002)');
SELECT ok(pg_temp.unchanged('figures'), 'progress: the refused reports changed nothing');
SELECT is((batchjob_progress(pg_temp.jid('f1'), 10, 9, 1, 'wf')).processed_records, 10::bigint,
    'progress: processed equal to the total is accepted');
SELECT is(pg_temp.figures('f'),
    'PROCESSING total=10 processed=10 success=9 errors=1 counts=0/1/0/0/0',
    'progress: ... and rolled up');

-- leases at the limit of timestamptz
SELECT pg_temp.family('l', 1);
SELECT pg_temp.park('{l1}');
SELECT pg_temp.snap('lease');
SELECT throws_ok($$SELECT * FROM batchjob_claim('wl', 1, '100000000 years')$$,
    '22008', NULL, 'claim: a lease past the end of timestamptz (22008)');
SELECT ok(pg_temp.unchanged('lease'), 'claim: ... and nothing was claimed');
SELECT pg_temp.take('{l1}', 'wl');
SELECT throws_ok($$SELECT batchjob_heartbeat(pg_temp.jid('l1'), 'wl', '100000000 years')$$,
    '22008', NULL, 'heartbeat: a lease past the end of timestamptz (22008)');
SELECT is(batchjob_heartbeat(pg_temp.jid('l1'), 'wl', '1000 years'), true,
    'heartbeat: a lease of 1000 years is accepted');

-- attempts and backoff
SELECT pg_temp.family('b', 2);
UPDATE batch_jobs SET max_attempts = 5000, attempts = 1099 WHERE job_id = pg_temp.jid('b1');
SELECT pg_temp.take('{b1}', 'wb');
SELECT is(pg_temp.try(
    $$SELECT format('%s %s %s', status, attempts, run_at <= clock_timestamp() + interval '90 minutes')
        FROM batchjob_fail(pg_temp.jid('b1'), 'again', true, 'wb')$$),
    'PENDING 1100 t',
    'fail: the 1100th failure of a job allowed 5000 attempts backs off by at most 1.5 hours (the hour cap)');
UPDATE batch_jobs SET attempts = 2147483647, max_attempts = 2147483647, run_at = now()
 WHERE job_id = pg_temp.jid('b2');
SELECT pg_temp.park('{b2}');
SELECT pg_temp.snap('attempts');
SELECT throws_ok($$SELECT * FROM batchjob_claim('wb')$$,
    '22003', 'integer out of range', 'claim: a job whose attempts are at the int limit cannot be claimed (22003)');
SELECT ok(pg_temp.unchanged('attempts'), 'claim: ... and nothing was claimed');
SELECT throws_ok($$UPDATE batch_jobs SET max_attempts = 0 WHERE job_id = pg_temp.jid('b2')$$,
    '23514', NULL, 'table: max_attempts 0 (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET attempts = -1 WHERE job_id = pg_temp.jid('b2')$$,
    '23514', NULL, 'table: negative attempts (23514)');
UPDATE batch_jobs SET attempts = 0, max_attempts = 3 WHERE job_id = pg_temp.jid('b2');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'numbers: verify finds nothing wrong');

/* ---- sums past the bigint range: 22003, never a wrapped value ---- */

SELECT pg_temp.row('o', NULL, true);
SELECT pg_temp.snap('overflow');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (created_by, parent_job_id, total_records)
      VALUES ('bad', pg_temp.jid('o'), 5000000000000000000),
             ('bad', pg_temp.jid('o'), 5000000000000000000)$$,
    '22003', NULL, 'overflow: two children in one INSERT whose totals pass the bigint range (22003)');
SELECT ok(pg_temp.unchanged('overflow'), 'overflow: ... and neither child was created');
SELECT pg_temp.row('o1', 'o', false, 5000000000000000000);
SELECT is((pg_temp.job('o')).total_records, 5000000000000000000::bigint,
    'overflow: one child of 5e18 records is fine');
SELECT pg_temp.snap('overflow 2');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (created_by, parent_job_id, total_records)
      VALUES ('bad', pg_temp.jid('o'), 5000000000000000000)$$,
    '22003', NULL, 'overflow: a second child of 5e18 records would pass the bigint range (22003)');
SELECT ok(pg_temp.unchanged('overflow 2'), 'overflow: ... and the parent kept 5e18');
SELECT pg_temp.row('o2', 'o', false, 4000000000000000000);
SELECT is((pg_temp.job('o')).total_records, 9000000000000000000::bigint,
    'overflow: a second child of 4e18 records is fine');
UPDATE batch_jobs SET total_records = 5223372036854775807 WHERE job_id = pg_temp.jid('o1');
SELECT is((pg_temp.job('o')).total_records, 9223372036854775807::bigint,
    'overflow: a sum of exactly the largest bigint is fine');
SELECT pg_temp.snap('overflow 2b');
SELECT throws_ok(
    $$UPDATE batch_jobs SET total_records = total_records + 1 WHERE job_id = pg_temp.jid('o2')$$,
    '22003', NULL, 'overflow: one record more on a child passes the parent''s range (22003)');
SELECT ok(pg_temp.unchanged('overflow 2b'), 'overflow: ... and neither the child nor the parent changed');

-- processed_records, through the worker functions (children of unknown size)
SELECT pg_temp.row('op', NULL, true);
SELECT pg_temp.row('op1', 'op', false);
SELECT pg_temp.row('op2', 'op', false);
SELECT pg_temp.take('{op1, op2}', 'wo');
SELECT is((batchjob_progress(pg_temp.jid('op1'), 5000000000000000000, 5000000000000000000, 0)).processed_records,
    5000000000000000000::bigint, 'overflow: a worker reports 5e18 records processed');
SELECT pg_temp.snap('overflow 3');
SELECT throws_ok(
    $$SELECT batchjob_progress(pg_temp.jid('op2'), 5000000000000000000, 0, 5000000000000000000)$$,
    '22003', NULL, 'overflow: a second report of 5e18 on a sibling passes the parent''s range (22003)');
SELECT throws_ok(
    $$SELECT batchjob_progress(pg_temp.jid('op2'), 9223372036854775807, 0, 0)$$,
    '22003', NULL, 'overflow: the largest bigint on the sibling too (22003)');
SELECT ok(pg_temp.unchanged('overflow 3'), 'overflow: ... and the sibling and the parent are as they were');

-- through nesting: two sub-parents of 5e18 each under one root
SELECT pg_temp.row('root', NULL, true);
SELECT pg_temp.row('sub1', 'root', true);
SELECT pg_temp.row('sub2', 'root', true);
SELECT pg_temp.row('leaf1', 'sub1', false, 5000000000000000000);
SELECT is((pg_temp.job('root')).total_records, 5000000000000000000::bigint,
    'overflow: the root adds up its first sub-parent''s 5e18');
SELECT pg_temp.snap('overflow 4');
SELECT throws_ok(
    $$INSERT INTO batch_jobs (created_by, parent_job_id, total_records)
      VALUES ('bad', pg_temp.jid('sub2'), 5000000000000000000)$$,
    '22003', NULL, 'overflow: a leaf of 5e18 under the second sub-parent passes the root''s range (22003)');
SELECT ok(pg_temp.unchanged('overflow 4'), 'overflow: ... and neither the sub-parent nor the root changed');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'overflow: verify finds nothing wrong');

/* ---- unknown statuses and policies ---- */

SELECT pg_temp.snap('statuses');
SELECT throws_ok($$UPDATE batch_jobs SET status = 'DONE' WHERE job_id = pg_temp.jid('n3')$$,
    '23514', NULL, 'status: DONE is not a status (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET status = 'pending' WHERE job_id = pg_temp.jid('n3')$$,
    '23514', NULL, 'status: statuses are upper case (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET status = 'PENDING ' WHERE job_id = pg_temp.jid('n3')$$,
    '23514', NULL, 'status: a trailing space makes another value (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET status = '' WHERE job_id = pg_temp.jid('n3')$$,
    '23514', NULL, 'status: the empty string (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET status = 'COMPLETED' || chr(0 + 1) WHERE job_id = pg_temp.jid('n3')$$,
    '23514', NULL, 'status: a control character (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET status = 'DONE' WHERE job_id = pg_temp.jid('n')$$,
    '23514', NULL, 'status: on a parent too (23514)');
SELECT throws_ok($$INSERT INTO batch_jobs (status, created_by) VALUES ('BOGUS', 'bad')$$,
    '23514', NULL, 'status: an INSERT with an unknown status (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET status = NULL WHERE job_id = pg_temp.jid('n3')$$,
    '23502', NULL, 'status: NULL (23502, NOT NULL)');
SELECT throws_ok($$UPDATE batch_jobs SET on_child_failure = 'explode' WHERE job_id = pg_temp.jid('n')$$,
    '23514', NULL, 'policy: an unknown on_child_failure by plain SQL (23514)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'x', 0, NULL, 'explode')$$,
    '22023', 'unknown on_child_failure "explode"', 'policy: an unknown on_child_failure by the function (22023)');
SELECT ok(pg_temp.unchanged('statuses'), 'statuses: the refused statements changed nothing');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'statuses: verify finds nothing wrong');

/* ---- cycles through parent_job_id ---- */

SELECT pg_temp.row('ca', NULL, true);
SELECT pg_temp.row('cb', NULL, true);
SELECT pg_temp.row('cr', NULL, true);
SELECT pg_temp.row('cs', 'cr', true);
SELECT pg_temp.row('ct', 'cs', true);
SELECT pg_temp.row('ct1', 'ct', false, 10);
SELECT pg_temp.row('cl', 'ca', false, 10);
UPDATE batch_jobs SET parent_job_id = pg_temp.jid('cb') WHERE job_id = pg_temp.jid('ca');
SELECT pg_temp.snap('cycles');
SELECT throws_ok($$UPDATE batch_jobs SET parent_job_id = job_id WHERE job_id = pg_temp.jid('ca')$$,
    '23514', NULL, 'cycle: a parent made its own parent (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET parent_job_id = job_id WHERE job_id = pg_temp.jid('cl')$$,
    '23514', NULL, 'cycle: a leaf made its own parent (23514)');
SELECT throws_ok($$UPDATE batch_jobs SET parent_job_id = pg_temp.jid('ca') WHERE job_id = pg_temp.jid('cb')$$,
    '22023', format('job %s cannot be placed under job %s', pg_temp.jid('cb'), pg_temp.jid('ca')),
    'cycle: cb under its own child ca (22023)');
SELECT throws_ok($$UPDATE batch_jobs SET parent_job_id = pg_temp.jid('ct') WHERE job_id = pg_temp.jid('cr')$$,
    '22023', format('job %s cannot be placed under job %s', pg_temp.jid('cr'), pg_temp.jid('ct')),
    'cycle: the root cr under its grandchild ct (22023)');
SELECT throws_ok($$UPDATE batch_jobs SET parent_job_id = pg_temp.jid('cs') WHERE job_id = pg_temp.jid('cr')$$,
    '22023', NULL, 'cycle: the root cr under its child cs (22023)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET parent_job_id = CASE job_id WHEN pg_temp.jid('cb') THEN pg_temp.jid('cr')
                                                        ELSE pg_temp.jid('cb') END
       WHERE job_id IN (pg_temp.jid('cb'), pg_temp.jid('cr'))$$,
    '22023', NULL, 'cycle: two parents placed under each other in one statement (22023)');
SELECT throws_ok(
    $$UPDATE batch_jobs SET is_parent = true,
                            parent_job_id = CASE WHEN job_id = pg_temp.jid('ca')
                                                 THEN pg_temp.jid('cl') ELSE parent_job_id END
       WHERE job_id IN (pg_temp.jid('ca'), pg_temp.jid('cl'))$$,
    '22023', NULL, 'cycle: a leaf turned parent and its parent placed under it, in one statement (22023)');
SELECT throws_ok($$UPDATE batch_jobs SET parent_job_id = pg_temp.jid('cl') WHERE job_id = pg_temp.jid('ct1')$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('cl')),
    'cycle: a child placed under a job that is not a parent (22023)');
SELECT throws_ok($$UPDATE batch_jobs SET parent_job_id = -1 WHERE job_id = pg_temp.jid('ct1')$$,
    '23503', NULL, 'cycle: a child placed under no job (23503)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'x', parent_job_id => pg_temp.jid('cl'))$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('cl')),
    'cycle: create_parent under a leaf (22023)');
SELECT ok(pg_temp.unchanged('cycles'), 'cycles: the refused statements changed nothing');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'cycles: verify finds nothing wrong');

/* ---- children moved between parents by plain UPDATE ---- */

-- m1: m11 PROCESSING 5/10 (4 ok, 1 error), m12 COMPLETED 10/10, m13 FAILED
-- 3/10, m14 PENDING; m2: m21, m22 PENDING
SELECT pg_temp.family('m1', 4);
SELECT pg_temp.family('m2', 2);
UPDATE batch_jobs SET
        status = (ARRAY['PROCESSING', 'COMPLETED', 'FAILED', 'PENDING'])[batch_number],
        processed_records = (ARRAY[5, 10, 3, 0])[batch_number],
        success_count = (ARRAY[4, 10, 0, 0])[batch_number],
        error_count = (ARRAY[1, 0, 3, 0])[batch_number]
    WHERE parent_job_id = pg_temp.jid('m1');
SELECT is(pg_temp.figures('m1'),
    'PROCESSING total=40 processed=18 success=14 errors=4 counts=1/1/1/1/0',
    'move: (setup) m1 rolled up its four children');
UPDATE batch_jobs SET parent_job_id = pg_temp.jid('m2'), batch_number = 3
 WHERE job_id = pg_temp.jid('m12');
SELECT is(pg_temp.figures('m1'),
    'PROCESSING total=30 processed=8 success=4 errors=4 counts=1/1/0/1/0',
    'move: m1 lost the COMPLETED m12 from its counts and sums');
SELECT is(pg_temp.figures('m2'),
    'PROCESSING total=30 processed=10 success=10 errors=0 counts=2/0/1/0/0',
    'move: m2 gained it, and is PROCESSING now that a child is done');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'move: verify finds nothing wrong');
SELECT pg_temp.snap('move conflict');
SELECT throws_ok(
    $$UPDATE batch_jobs SET parent_job_id = pg_temp.jid('m2') WHERE job_id = pg_temp.jid('m11')$$,
    '23505', NULL, 'move: a child whose batch_number the new parent already has (23505)');
SELECT ok(pg_temp.unchanged('move conflict'), 'move: ... and nothing changed');
UPDATE batch_jobs SET parent_job_id = pg_temp.jid('m2'), batch_number = batch_number + 10
 WHERE parent_job_id = pg_temp.jid('m1');
SELECT is(pg_temp.figures('m2'),
    'PROCESSING total=60 processed=18 success=14 errors=4 counts=3/1/1/1/0',
    'move: m2 took all of m1''s other children in one statement');
SELECT is(
    (SELECT format('%s/%s/%s/%s/%s', child_pending, child_processing, child_completed,
                   child_failed, child_cancelled)
       FROM batch_jobs WHERE job_id = pg_temp.jid('m1')),
    '0/0/0/0/0', 'move: m1 has no children left and counts none');
SELECT is(batchjob_refresh_parent(pg_temp.jid('m1')), NULL,
    'move: refresh_parent of the emptied m1 finds no children');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'move: verify finds nothing wrong after the bulk move');
-- a sub-parent and its children moved from one root to another
SELECT pg_temp.row('mr1', NULL, true);
SELECT pg_temp.row('mr2', NULL, true);
UPDATE batch_jobs SET parent_job_id = pg_temp.jid('mr1') WHERE job_id = pg_temp.jid('m2');
SELECT is(pg_temp.figures('mr1'),
    'PROCESSING total=60 processed=18 success=14 errors=4 counts=0/1/0/0/0',
    'move: root mr1 adds up the sub-parent m2');
UPDATE batch_jobs SET parent_job_id = pg_temp.jid('mr2') WHERE job_id = pg_temp.jid('m2');
SELECT is(pg_temp.figures('mr2'),
    'PROCESSING total=60 processed=18 success=14 errors=4 counts=0/1/0/0/0',
    'move: root mr2 took the sub-parent m2 with its figures');
SELECT is(
    (SELECT format('%s/%s/%s', child_pending + child_processing + child_completed
                                + child_failed + child_cancelled, processed_records, total_records)
       FROM batch_jobs WHERE job_id = pg_temp.jid('mr1')),
    '0/0/0', 'move: root mr1 gave them all back');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'move: verify finds nothing wrong after moving a sub-parent');

/* ---- a parent deleted while its children are claimed ---- */

SELECT pg_temp.family('d', 3);
SELECT pg_temp.take('{d1, d2}', 'wd');
SELECT lives_ok($$SELECT batchjob_progress(pg_temp.jid('d1'), 4, 4, 0, 'wd')$$,
    'delete: (setup) the worker reports on d1');
DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('d');
SELECT is((SELECT count(*) FROM batch_jobs
            WHERE job_id IN (SELECT id FROM ids WHERE name ~ '^d[0-9]*$')),
    0::bigint, 'delete: the parent and its claimed children are gone');
SELECT is(batchjob_heartbeat(pg_temp.jid('d1'), 'wd'), false,
    'delete: the worker''s heartbeat says false');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('d1'), 5, 5, 0, 'wd')$$,
    'P0002', format('job %s does not exist', pg_temp.jid('d1')),
    'delete: its progress report gets P0002');
SELECT throws_ok($$SELECT batchjob_complete(pg_temp.jid('d1'), 'wd')$$,
    'P0002', format('job %s does not exist', pg_temp.jid('d1')),
    'delete: its completion gets P0002');
SELECT throws_ok($$SELECT batchjob_fail(pg_temp.jid('d2'), 'x', true, 'wd')$$,
    'P0002', format('job %s does not exist', pg_temp.jid('d2')),
    'delete: its failure gets P0002');
SELECT throws_ok($$SELECT batchjob_complete(ARRAY[pg_temp.jid('d1'), pg_temp.jid('d2')])$$,
    'P0002', NULL, 'delete: its bulk completion gets P0002');
SELECT throws_ok($$SELECT batchjob_cancel(pg_temp.jid('d'))$$,
    'P0002', NULL, 'delete: cancelling the deleted parent gets P0002');
SELECT is((SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = pg_temp.jid('d')),
    0::bigint, 'delete: no difference waits for the deleted parent');
-- a sub-parent with a claimed grandchild deleted from under its root
SELECT pg_temp.row('g', NULL, true);
SELECT pg_temp.row('h', 'g', true);
SELECT pg_temp.row('h1', 'h', false, 10);
SELECT pg_temp.row('h2', 'h', false, 10);
SELECT pg_temp.row('g1', 'g', false, 7);
SELECT pg_temp.take('{h1}', 'wh');
SELECT lives_ok($$SELECT batchjob_progress(pg_temp.jid('h1'), 6, 6, 0, 'wh')$$,
    'delete: (setup) a worker reports on the grandchild h1');
DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('h');
SELECT is(pg_temp.figures('g'), 'PROCESSING total=7 processed=0 success=0 errors=0 counts=1/0/0/0/0',
    'delete: the root counts only its remaining child once the sub-parent is deleted (and, started, stays PROCESSING)');
SELECT throws_ok($$SELECT batchjob_complete(pg_temp.jid('h1'), 'wh')$$,
    'P0002', NULL, 'delete: the grandchild''s worker gets P0002');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'delete: verify finds nothing wrong');

/* ---- 100,000 children cancelled in one call ---- */

INSERT INTO ids SELECT 'huge', job_id FROM batchjob_create_parent('{"t": "huge"}', 'bad');
SELECT is((SELECT count(*) FROM batchjob_split(pg_temp.jid('huge'), 100000, 1)), 100000::bigint,
    'huge: split makes 100,000 children');
INSERT INTO ids SELECT 'huge' || batch_number, job_id FROM batch_jobs
 WHERE parent_job_id = pg_temp.jid('huge') AND batch_number <= 2;
SELECT pg_temp.take('{huge1, huge2}', 'wh');
SELECT is((batchjob_complete(pg_temp.jid('huge1'), 'wh')).status, 'COMPLETED',
    'huge: (setup) one child completed, one PROCESSING');
-- Statistics that say batch_jobs is empty, as after a purge and a vacuum
-- with the split done before autovacuum analyzes again: the walk below the
-- parent must still look children up by index (planned as joins over whole
-- scans, this cancel ran for many minutes; the timeout turns a regression
-- into a failure instead of a hang, and is far above what it takes).
UPDATE pg_class SET reltuples = 0 WHERE oid = 'batch_jobs'::regclass;
SET LOCAL statement_timeout = '5min';
SELECT is(batchjob_cancel(pg_temp.jid('huge')), 99999::bigint,
    'huge: one cancel of the parent cancels the 99,999 unfinished children and says so, whatever the statistics say');
RESET statement_timeout;
SELECT results_eq($$SELECT * FROM batchjob_child_counts(pg_temp.jid('huge'))$$,
    $$VALUES (0::bigint, 0::bigint, 1::bigint, 0::bigint, 99999::bigint, 100000::bigint)$$,
    'huge: the counts are exact');
SELECT is((pg_temp.job('huge')).status, 'COMPLETED',
    'huge: the parent is finished (COMPLETED: one child completed, none failed)');
SELECT throws_ok($$SELECT batchjob_complete(pg_temp.jid('huge2'), 'wh')$$,
    '55000', NULL, 'huge: the worker holding a cancelled child gets 55000');
SELECT is(batchjob_cancel(pg_temp.jid('huge')), 0::bigint,
    'huge: a second cancel finds nothing left to cancel');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$, 'huge: verify finds nothing wrong');

SELECT * FROM finish();
ROLLBACK;
