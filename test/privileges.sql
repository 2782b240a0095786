/*
 * test/privileges.sql - pgTAP: the three access levels of batchjob_grant
 * (worker, submitter, admin), a role given nothing, and batchjob_revoke.
 *
 * - Every function and relation of the extension, for each of the four
 *   roles: who may execute or read what (function_privs_are,
 *   table_privs_are, sequence_privs_are), from one matrix that must name
 *   every function the extension has.
 * - Every call a role may not make fails with 42501 and the message of the
 *   privilege check itself, not of something further in.
 * - The calls a role may make work under SET ROLE, with the results they
 *   should have (the rollup runs for them too).
 * - The SECURITY DEFINER functions change only the rows their arguments
 *   name, and refuse a target of the wrong kind.
 * - batchjob_grant's own errors, a role whose name is an SQL injection, and
 *   batchjob_revoke taking everything back.
 *
 * The roles are created inside the test transaction (CREATE ROLE is
 * transactional), so the final ROLLBACK removes them with everything else.
 * The jobs table is emptied first, inside the transaction too, so that
 * claims take exactly the jobs made here.
 */
BEGIN;
SELECT plan(352);
\ir pgtap/fixture.sql

CREATE ROLE bjt_priv_worker;
CREATE ROLE bjt_priv_submitter;
CREATE ROLE bjt_priv_admin;
CREATE ROLE bjt_priv_nobody;
-- a name that would break out of an unquoted GRANT ... TO %s
CREATE ROLE "bjt_priv_x; DROP TABLE batch_jobs; --";
SELECT batchjob_grant('bjt_priv_worker', 'worker');
SELECT batchjob_grant('bjt_priv_submitter', 'submitter');
SELECT batchjob_grant('bjt_priv_admin', 'admin');

-- Every row but the ones named, as one value: what a call must not touch.
CREATE FUNCTION pg_temp.others(text[]) RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_agg(to_jsonb(j) ORDER BY j.job_id) FROM batch_jobs j
           WHERE j.job_id NOT IN (SELECT id FROM ids WHERE name = ANY ($1)) $$;
CREATE TEMP TABLE snap (name text PRIMARY KEY, v jsonb);
GRANT ALL ON snap TO PUBLIC;

/*
 * The jobs: parent p (tenant_a) with p1..p4 of 10 records each, parent q
 * (tenant_b) with q1, q2, and a standalone job solo.  Everything but p's
 * children is parked, so claims take p1, p2, ... in job_id order.
 */
INSERT INTO ids SELECT 'p', job_id FROM batchjob_create_parent('{"t": "p"}', 'tenant_a');
INSERT INTO ids SELECT 'p' || batch_number, job_id
    FROM batchjob_split(pg_temp.jid('p'), 40, 10);
INSERT INTO ids SELECT 'q', job_id FROM batchjob_create_parent('{"t": "q"}', 'tenant_b');
INSERT INTO ids SELECT 'q' || batch_number, job_id
    FROM batchjob_split(pg_temp.jid('q'), 20, 10);
WITH j AS (INSERT INTO batch_jobs (created_by, total_records) VALUES ('tenant_b', 5)
           RETURNING job_id)
    INSERT INTO ids SELECT 'solo', job_id FROM j;
UPDATE batch_jobs SET run_at = 'infinity'
 WHERE job_id IN (pg_temp.jid('q1'), pg_temp.jid('q2'), pg_temp.jid('solo'));

/* ---- who may execute what ---- */

CREATE TEMP TABLE roles (role name PRIMARY KEY, level text);
INSERT INTO roles VALUES ('bjt_priv_worker', 'worker'),
    ('bjt_priv_submitter', 'submitter'), ('bjt_priv_admin', 'admin'),
    ('bjt_priv_nobody', 'nobody');

-- one row per function of the extension: which levels may execute it
-- ("everyone" is PUBLIC)
CREATE TEMP TABLE fmatrix (fn name, args name[], levels text[]);
INSERT INTO fmatrix VALUES
    ('batchjob_create_parent', '{jsonb,text,integer,bigint,text,bigint}', '{submitter,admin}'),
    ('batchjob_create_child', '{bigint,integer,bigint,integer,jsonb,integer}', '{submitter,admin}'),
    ('batchjob_split', '{bigint,bigint,integer}', '{submitter,admin}'),
    ('batchjob_children', '{bigint}', '{worker,submitter,admin}'),
    ('batchjob_child_counts', '{bigint}', '{worker,submitter,admin}'),
    ('batchjob_next_pending', '{}', '{worker,submitter,admin}'),
    ('batchjob_refresh_parent', '{bigint}', '{admin}'),
    ('batchjob_fold', '{bigint}', '{admin}'),
    ('batchjob_claim', '{text,integer,interval}', '{worker,admin}'),
    ('batchjob_heartbeat', '{bigint,text,interval,integer}', '{worker,admin}'),
    ('batchjob_progress', '{bigint,bigint,bigint,bigint,text,integer}', '{worker,admin}'),
    ('batchjob_complete', '{bigint,text,integer}', '{worker,admin}'),
    ('batchjob_fail', '{bigint,text,boolean,text,integer}', '{worker,admin}'),
    ('batchjob_complete', '{bigint[],text}', '{worker,admin}'),
    ('batchjob_fail', '{bigint[],text,boolean,text}', '{worker,admin}'),
    ('batchjob_complete_and_claim', '{bigint[],text,integer,interval}', '{worker,admin}'),
    ('batchjob_reap', '{}', '{admin}'),
    ('batchjob_retry', '{bigint}', '{submitter,admin}'),
    ('batchjob_cancel', '{bigint}', '{submitter,admin}'),
    ('batchjob_verify', '{}', '{admin}'),
    ('batchjob_grant', '{regrole,text,text[],integer}', '{admin}'),
    ('batchjob_revoke', '{regrole}', '{admin}'),
    ('batchjob_tenant_visible', '{text}', '{everyone}'),
    -- every reader of batch_job_progress evaluates it (inlined)
    ('batchjob_child_total', '{bigint,bigint,bigint,bigint,bigint}', '{everyone}'),
    -- every role that writes batch_jobs evaluates it (its CHECK constraint)
    ('batchjob_row_check', '{text,text,boolean,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,integer,bigint,integer,integer,integer}', '{everyone}'),
    ('batchjob_guard', '{}', '{}'),
    ('batchjob_rollup', '{}', '{}'),
    ('batchjob_truncate', '{}', '{}'),
    ('batchjob_create_followup', '{bigint[],jsonb,text,text,integer,bigint,boolean}', '{submitter,admin}'),
    ('batchjob_start_followups', '{bigint}', '{admin}'),
    ('batchjob_purge', '{interval,integer,boolean}', '{admin}'),
    ('batchjob_followups_finish', '{}', '{}'),
    ('batchjob_followups_truncate', '{}', '{}'),
    -- admins hold EXECUTE on every function; this one checks for a
    -- superuser itself
    ('batchjob_hold_folder_busy', '{boolean}', '{admin}'),
    -- scale-out: setting the partition is the owner's (an admin may not
    -- write batch_job_partition); the trigger is nobody's
    ('batchjob_set_partition', '{integer}', '{admin}'),
    ('batchjob_partition', '{}', '{admin}'),
    ('batchjob_partition_apply', '{}', '{}');

SELECT set_eq(
    $$SELECT d.objid FROM pg_depend d
       WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
         AND d.classid = 'pg_proc'::regclass
         AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'batchjob')$$,
    $$SELECT format('public.%I(%s)', fn, array_to_string(args, ','))::regprocedure::oid
        FROM fmatrix$$,
    'the matrix below names every function of the extension, with its signature');

-- 36 functions x 4 roles
SELECT function_privs_are('public', m.fn, m.args, m.role,
           CASE WHEN m.level = ANY (m.levels) OR 'everyone' = ANY (m.levels)
                THEN ARRAY['EXECUTE'] ELSE ARRAY[]::name[] END,
           format('%s: EXECUTE on %s(%s) %s', m.level, m.fn,
                  array_to_string(m.args, ', '),
                  CASE WHEN m.level = ANY (m.levels) OR 'everyone' = ANY (m.levels)
                       THEN 'granted' ELSE 'not granted' END))
  FROM (SELECT f.*, r.role, r.level FROM fmatrix f CROSS JOIN roles r
         ORDER BY r.level, f.fn, f.args) m;

/* ---- who may read and write what ---- */

SELECT table_privs_are('public', rel, role, privs,
           format('%s: privileges on %s are %s', level, rel, privs))
  FROM (SELECT r.role, r.level, v.rel,
               CASE WHEN r.level IN ('worker', 'submitter')
                         AND v.rel IN ('batch_jobs', 'batch_job_progress')
                    THEN ARRAY['SELECT']::name[] ELSE ARRAY[]::name[] END AS privs
          FROM roles r
         CROSS JOIN (VALUES ('batch_jobs'), ('batch_job_progress'),
                            ('batch_job_figures'),
                            ('batch_job_deltas'), ('batch_job_workers'),
                            ('batch_job_submitters'), ('batch_job_partition'),
                            ('batch_job_followups'), ('batch_jobs_archive')) v(rel)
         WHERE r.level <> 'admin'
         ORDER BY r.level, v.rel) m;

SELECT sequence_privs_are('public', 'batch_jobs_job_id_seq', role,
           CASE WHEN level = 'admin' THEN ARRAY['SELECT', 'UPDATE', 'USAGE']::name[]
                ELSE ARRAY[]::name[] END,
           format('%s: privileges on batch_jobs_job_id_seq', level))
  FROM (SELECT * FROM roles ORDER BY level) r;

-- admin: read and write every table, read the view; never TRIGGER or
-- REFERENCES (TRIGGER is checked on its own below)
SELECT is(ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE',
                                            'TRUNCATE', 'REFERENCES']) p
                 WHERE has_table_privilege('bjt_priv_admin', 'public.' || rel, p)),
          want,
          format('admin: exactly %s on %s', array_to_string(want, ', '), rel))
  FROM (VALUES ('batch_jobs', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
               ('batch_job_progress', ARRAY['SELECT']),
               -- what batchjob_verify() reads
               ('batch_job_figures', ARRAY['SELECT']),
               ('batch_job_deltas', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
               ('batch_job_workers', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
               ('batch_job_submitters', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
               ('batch_job_partition', ARRAY[]::text[]),
               ('batch_job_followups', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
               ('batch_jobs_archive', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']))
       v(rel, want);

-- A trigger runs as whoever fires it, and the SECURITY DEFINER functions
-- and the rollup write these tables as the extension's owner (normally a
-- superuser): TRIGGER would let an admin run code of its own as the owner.
SELECT is(ARRAY(SELECT rel FROM unnest(ARRAY['batch_jobs', 'batch_job_progress',
                                             'batch_job_figures', 'batch_job_deltas',
                                             'batch_job_workers', 'batch_job_submitters',
                                             'batch_job_followups', 'batch_jobs_archive']) rel
                 WHERE has_table_privilege('bjt_priv_admin', 'public.' || rel, 'TRIGGER')),
          ARRAY[]::text[],
          'admin: no TRIGGER privilege on any batchjob relation (its trigger would run as the extension owner)');

CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN RETURN NULL; END$$;
SET ROLE bjt_priv_worker;
SELECT throws_ok(
    $$CREATE TRIGGER bjt_priv_t AFTER UPDATE ON batch_jobs
      FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.noop()$$,
    '42501', 'permission denied for table batch_jobs',
    'worker: may not create a trigger on batch_jobs (42501)');
RESET ROLE;
SET ROLE bjt_priv_submitter;
SELECT throws_ok(
    $$CREATE TRIGGER bjt_priv_t AFTER UPDATE ON batch_jobs
      FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.noop()$$,
    '42501', 'permission denied for table batch_jobs',
    'submitter: may not create a trigger on batch_jobs (42501)');
RESET ROLE;

/* ---- worker: what it may not do ---- */

SET ROLE bjt_priv_worker;
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'w')$$,
    '42501', 'permission denied for function batchjob_create_parent',
    'worker: batchjob_create_parent is refused (42501)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('p'), 5, 40, 10)$$,
    '42501', 'permission denied for function batchjob_create_child',
    'worker: batchjob_create_child is refused (42501)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('p'), 10, 10)$$,
    '42501', 'permission denied for function batchjob_split',
    'worker: batchjob_split is refused (42501)');
SELECT throws_ok($$SELECT batchjob_cancel(pg_temp.jid('p'))$$,
    '42501', 'permission denied for function batchjob_cancel',
    'worker: batchjob_cancel is refused (42501)');
SELECT throws_ok($$SELECT batchjob_retry(pg_temp.jid('p1'))$$,
    '42501', 'permission denied for function batchjob_retry',
    'worker: batchjob_retry is refused (42501)');
SELECT throws_ok($$SELECT batchjob_refresh_parent(pg_temp.jid('p'))$$,
    '42501', 'permission denied for function batchjob_refresh_parent',
    'worker: batchjob_refresh_parent is refused (42501)');
SELECT throws_ok($$SELECT batchjob_fold()$$,
    '42501', 'permission denied for function batchjob_fold',
    'worker: batchjob_fold() is refused (42501)');
SELECT throws_ok($$SELECT batchjob_fold(pg_temp.jid('p'))$$,
    '42501', 'permission denied for function batchjob_fold',
    'worker: batchjob_fold(parent) is refused (42501)');
SELECT throws_ok($$SELECT batchjob_reap()$$,
    '42501', 'permission denied for function batchjob_reap',
    'worker: batchjob_reap is refused (42501)');
SELECT throws_ok($$SELECT * FROM batchjob_verify()$$,
    '42501', 'permission denied for function batchjob_verify',
    'worker: batchjob_verify is refused (42501)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_priv_worker', 'admin')$$,
    '42501', 'permission denied for function batchjob_grant',
    'worker: batchjob_grant (to itself, admin) is refused (42501)');
SELECT throws_ok($$SELECT batchjob_revoke('bjt_priv_submitter')$$,
    '42501', 'permission denied for function batchjob_revoke',
    'worker: batchjob_revoke is refused (42501)');
SELECT throws_ok($$INSERT INTO batch_jobs (created_by) VALUES ('w')$$,
    '42501', 'permission denied for table batch_jobs',
    'worker: INSERT on batch_jobs is refused (42501)');
SELECT throws_ok($$UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = pg_temp.jid('p1')$$,
    '42501', 'permission denied for table batch_jobs',
    'worker: UPDATE on batch_jobs is refused (42501)');
SELECT throws_ok($$DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('p1')$$,
    '42501', 'permission denied for table batch_jobs',
    'worker: DELETE on batch_jobs is refused (42501)');
SELECT throws_ok($$TRUNCATE batch_jobs$$,
    '42501', 'permission denied for table batch_jobs',
    'worker: TRUNCATE of batch_jobs is refused (42501)');
SELECT throws_ok($$SELECT * FROM batch_job_deltas$$,
    '42501', 'permission denied for table batch_job_deltas',
    'worker: reading batch_job_deltas is refused (42501)');
SELECT throws_ok($$INSERT INTO batch_job_deltas VALUES (pg_temp.jid('p'), 0, 0, 0, 0, 0, 0, 0, 0, 0)$$,
    '42501', 'permission denied for table batch_job_deltas',
    'worker: writing batch_job_deltas is refused (42501)');
-- it shows every tenant's parents; batch_job_progress is the worker's view
SELECT throws_ok($$SELECT count(*) FROM batch_job_figures$$,
    '42501', 'permission denied for view batch_job_figures',
    'worker: reading batch_job_figures is refused (42501)');
RESET ROLE;

/* ---- submitter: what it may not do ---- */

SET ROLE bjt_priv_submitter;
SELECT throws_ok($$SELECT * FROM batchjob_claim('s')$$,
    '42501', 'permission denied for function batchjob_claim',
    'submitter: batchjob_claim is refused (42501)');
SELECT throws_ok($$SELECT batchjob_heartbeat(pg_temp.jid('p1'), 's')$$,
    '42501', 'permission denied for function batchjob_heartbeat',
    'submitter: batchjob_heartbeat is refused (42501)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('p1'), 1, 1, 0)$$,
    '42501', 'permission denied for function batchjob_progress',
    'submitter: batchjob_progress is refused (42501)');
SELECT throws_ok($$SELECT batchjob_complete(pg_temp.jid('p1'))$$,
    '42501', 'permission denied for function batchjob_complete',
    'submitter: batchjob_complete(job_id) is refused (42501)');
SELECT throws_ok($$SELECT batchjob_complete(ARRAY[pg_temp.jid('p1')])$$,
    '42501', 'permission denied for function batchjob_complete',
    'submitter: batchjob_complete(job_ids) is refused (42501)');
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(NULL, 's')$$,
    '42501', 'permission denied for function batchjob_complete_and_claim',
    'submitter: batchjob_complete_and_claim is refused (42501)');
SELECT throws_ok($$SELECT batchjob_fail(pg_temp.jid('p1'), 'x')$$,
    '42501', 'permission denied for function batchjob_fail',
    'submitter: batchjob_fail(job_id) is refused (42501)');
SELECT throws_ok($$SELECT batchjob_fail(ARRAY[pg_temp.jid('p1')], 'x')$$,
    '42501', 'permission denied for function batchjob_fail',
    'submitter: batchjob_fail(job_ids) is refused (42501)');
SELECT throws_ok($$SELECT batchjob_refresh_parent(pg_temp.jid('p'))$$,
    '42501', 'permission denied for function batchjob_refresh_parent',
    'submitter: batchjob_refresh_parent is refused (42501)');
SELECT throws_ok($$SELECT batchjob_fold()$$,
    '42501', 'permission denied for function batchjob_fold',
    'submitter: batchjob_fold is refused (42501)');
SELECT throws_ok($$SELECT batchjob_reap()$$,
    '42501', 'permission denied for function batchjob_reap',
    'submitter: batchjob_reap is refused (42501)');
SELECT throws_ok($$SELECT * FROM batchjob_verify()$$,
    '42501', 'permission denied for function batchjob_verify',
    'submitter: batchjob_verify is refused (42501)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_priv_submitter', 'admin')$$,
    '42501', 'permission denied for function batchjob_grant',
    'submitter: batchjob_grant (to itself, admin) is refused (42501)');
SELECT throws_ok($$SELECT batchjob_revoke('bjt_priv_worker')$$,
    '42501', 'permission denied for function batchjob_revoke',
    'submitter: batchjob_revoke is refused (42501)');
SELECT throws_ok($$INSERT INTO batch_jobs (created_by) VALUES ('s')$$,
    '42501', 'permission denied for table batch_jobs',
    'submitter: INSERT on batch_jobs is refused (42501)');
SELECT throws_ok($$UPDATE batch_jobs SET priority = 9 WHERE job_id = pg_temp.jid('p')$$,
    '42501', 'permission denied for table batch_jobs',
    'submitter: UPDATE on batch_jobs is refused (42501)');
SELECT throws_ok($$DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('p')$$,
    '42501', 'permission denied for table batch_jobs',
    'submitter: DELETE on batch_jobs is refused (42501)');
SELECT throws_ok($$TRUNCATE batch_jobs$$,
    '42501', 'permission denied for table batch_jobs',
    'submitter: TRUNCATE of batch_jobs is refused (42501)');
SELECT throws_ok($$SELECT * FROM batch_job_deltas$$,
    '42501', 'permission denied for table batch_job_deltas',
    'submitter: reading batch_job_deltas is refused (42501)');
RESET ROLE;

/* ---- a role given nothing: nothing at all ---- */

SET ROLE bjt_priv_nobody;
SELECT throws_ok(sql, '42501', 'permission denied for function ' || fn,
                 'nobody: ' || sql || ' is refused (42501)')
  FROM (VALUES
    ('batchjob_create_parent', $$SELECT batchjob_create_parent('{}', 'n')$$),
    ('batchjob_create_child', $$SELECT batchjob_create_child(pg_temp.jid('p'), 5, 40, 10)$$),
    ('batchjob_split', $$SELECT * FROM batchjob_split(pg_temp.jid('q'), 10, 10)$$),
    ('batchjob_children', $$SELECT * FROM batchjob_children(pg_temp.jid('p'))$$),
    ('batchjob_child_counts', $$SELECT * FROM batchjob_child_counts(pg_temp.jid('p'))$$),
    ('batchjob_next_pending', $$SELECT * FROM batchjob_next_pending()$$),
    ('batchjob_refresh_parent', $$SELECT batchjob_refresh_parent(pg_temp.jid('p'))$$),
    ('batchjob_fold', $$SELECT batchjob_fold()$$),
    ('batchjob_claim', $$SELECT * FROM batchjob_claim('n')$$),
    ('batchjob_heartbeat', $$SELECT batchjob_heartbeat(pg_temp.jid('p1'), 'n')$$),
    ('batchjob_progress', $$SELECT batchjob_progress(pg_temp.jid('p1'), 1, 1, 0)$$),
    ('batchjob_complete', $$SELECT batchjob_complete(pg_temp.jid('p1'))$$),
    ('batchjob_complete', $$SELECT batchjob_complete(ARRAY[pg_temp.jid('p1')])$$),
    ('batchjob_fail', $$SELECT batchjob_fail(pg_temp.jid('p1'), 'x')$$),
    ('batchjob_fail', $$SELECT batchjob_fail(ARRAY[pg_temp.jid('p1')], 'x')$$),
    ('batchjob_complete_and_claim', $$SELECT * FROM batchjob_complete_and_claim(NULL, 'n')$$),
    ('batchjob_reap', $$SELECT batchjob_reap()$$),
    ('batchjob_retry', $$SELECT batchjob_retry(pg_temp.jid('p1'))$$),
    ('batchjob_cancel', $$SELECT batchjob_cancel(pg_temp.jid('p'))$$),
    ('batchjob_verify', $$SELECT * FROM batchjob_verify()$$),
    ('batchjob_grant', $$SELECT batchjob_grant('bjt_priv_nobody', 'admin')$$),
    ('batchjob_revoke', $$SELECT batchjob_revoke('bjt_priv_admin')$$)) v(fn, sql);
SELECT throws_ok($$SELECT count(*) FROM batch_jobs$$,
    '42501', 'permission denied for table batch_jobs',
    'nobody: SELECT on batch_jobs is refused (42501)');
SELECT throws_ok($$SELECT count(*) FROM batch_job_progress$$,
    '42501', 'permission denied for view batch_job_progress',
    'nobody: SELECT on batch_job_progress is refused (42501)');
SELECT throws_ok($$SELECT count(*) FROM batch_job_deltas$$,
    '42501', 'permission denied for table batch_job_deltas',
    'nobody: SELECT on batch_job_deltas is refused (42501)');
SELECT throws_ok($$SELECT count(*) FROM batch_job_workers$$,
    '42501', 'permission denied for table batch_job_workers',
    'nobody: SELECT on batch_job_workers is refused (42501)');
SELECT throws_ok($$INSERT INTO batch_jobs (created_by) VALUES ('n')$$,
    '42501', 'permission denied for table batch_jobs',
    'nobody: INSERT on batch_jobs is refused (42501)');
SELECT throws_ok($$SELECT nextval('batch_jobs_job_id_seq')$$,
    '42501', 'permission denied for sequence batch_jobs_job_id_seq',
    'nobody: nextval on the job id sequence is refused (42501)');
RESET ROLE;

/* ---- worker: what it may do ---- */

SET ROLE bjt_priv_worker;
SELECT is((SELECT count(*) FROM batch_jobs), 9::bigint,
    'worker: reads batch_jobs with plain SELECT');
SELECT is((SELECT children FROM batch_job_progress WHERE job_id = pg_temp.jid('p')),
    4::bigint, 'worker: reads batch_job_progress');
SELECT is((SELECT count(*) FROM batchjob_children(pg_temp.jid('p'))), 4::bigint,
    'worker: batchjob_children works');
SELECT is((SELECT total FROM batchjob_child_counts(pg_temp.jid('p'))), 4::bigint,
    'worker: batchjob_child_counts works');
SELECT is((batchjob_next_pending()).job_id, pg_temp.jid('p1'),
    'worker: batchjob_next_pending names p1');
SELECT results_eq($$SELECT job_id, status, locked_by FROM batchjob_claim('w1')$$,
    format($$VALUES (%s::bigint, 'PROCESSING'::text, 'w1'::text)$$, pg_temp.jid('p1')),
    'worker: batchjob_claim takes p1');
SELECT is(batchjob_heartbeat(pg_temp.jid('p1'), 'w1'), true,
    'worker: batchjob_heartbeat extends its lease');
SELECT is((batchjob_progress(pg_temp.jid('p1'), 5, 4, 1, 'w1')).processed_records,
    5::bigint, 'worker: batchjob_progress records its figures');

INSERT INTO snap VALUES ('before complete', pg_temp.others('{p, p1}'));
SELECT is((batchjob_complete(pg_temp.jid('p1'), 'w1')).status, 'COMPLETED',
    'worker: batchjob_complete completes p1');
SELECT is(pg_temp.others('{p, p1}'), (SELECT v FROM snap WHERE name = 'before complete'),
    'worker: batchjob_complete (SECURITY DEFINER) changed no row but the job named and its parent');
SELECT results_eq(
    $$SELECT child_pending, child_completed, processed_records, success_count, error_count
        FROM batch_jobs WHERE job_id = pg_temp.jid('p')$$,
    $$VALUES (3::bigint, 1::bigint, 5::bigint, 4::bigint, 1::bigint)$$,
    'worker: its completion rolled up to the parent (the rollup runs as the owner)');

SELECT is((SELECT job_id FROM batchjob_claim('w1')), pg_temp.jid('p2'),
    'worker: claims p2');
SELECT results_eq(
    $$SELECT status, attempts, run_at > clock_timestamp(), error_details
        FROM batchjob_fail(pg_temp.jid('p2'), 'boom', true, 'w1')$$,
    $$VALUES ('PENDING'::text, 1, true, 'boom'::text)$$,
    'worker: batchjob_fail with retry puts p2 back to PENDING after a backoff');
RESET ROLE;
UPDATE batch_jobs SET run_at = 'infinity' WHERE job_id = pg_temp.jid('p2');
SET ROLE bjt_priv_worker;
SELECT is((SELECT job_id FROM batchjob_claim('w1')), pg_temp.jid('p3'),
    'worker: claims p3');
SELECT is(batchjob_complete(ARRAY[pg_temp.jid('p3')], 'w1'), 1::bigint,
    'worker: batchjob_complete(job_ids) completes p3');
SELECT is((SELECT job_id FROM batchjob_claim('w1')), pg_temp.jid('p4'),
    'worker: claims p4');
SELECT is(batchjob_fail(ARRAY[pg_temp.jid('p4')], 'bad', false, 'w1'), 1::bigint,
    'worker: batchjob_fail(job_ids) fails p4');

/* ---- SECURITY DEFINER functions touch only what they are given ---- */

INSERT INTO snap VALUES ('worker misuse', pg_temp.others('{}'));
SELECT throws_ok($$SELECT batchjob_complete(pg_temp.jid('q1'), 'w1')$$,
    '55000', NULL, 'worker: cannot complete a job nobody claimed (55000)');
SELECT throws_ok($$SELECT batchjob_complete(pg_temp.jid('p'), 'w1')$$,
    '22023', NULL, 'worker: cannot complete a parent (22023)');
SELECT throws_ok($$SELECT batchjob_progress(pg_temp.jid('p4'), 10, 10, 0, 'w1')$$,
    '55000', NULL, 'worker: cannot report progress on a FAILED job (55000)');
SELECT throws_ok($$SELECT batchjob_complete(ARRAY[pg_temp.jid('q1'), pg_temp.jid('q2')], 'w1')$$,
    '55000', NULL, 'worker: cannot complete unclaimed jobs in bulk (55000)');
SELECT is(batchjob_heartbeat(pg_temp.jid('q1'), 'w1'), false,
    'worker: a heartbeat for a job it does not hold changes nothing (false)');
SELECT is(pg_temp.others('{}'), (SELECT v FROM snap WHERE name = 'worker misuse'),
    'worker: the refused calls changed no row at all');
RESET ROLE;

-- a job held by w1 cannot be finished by w2 through the functions
SET ROLE bjt_priv_admin;
UPDATE batch_jobs SET run_at = now() - interval '1 second' WHERE job_id = pg_temp.jid('q1');
RESET ROLE;
SET ROLE bjt_priv_worker;
SELECT is((SELECT job_id FROM batchjob_claim('w1')), pg_temp.jid('q1'),
    'worker: claims q1 as w1');
INSERT INTO snap VALUES ('held by w1', pg_temp.others('{}'));
SELECT throws_ok($$SELECT batchjob_complete(pg_temp.jid('q1'), 'w2')$$,
    '55000', format('job %s is not held by worker "w2"', pg_temp.jid('q1')),
    'worker: w2 cannot complete a job w1 holds (55000)');
SELECT throws_ok($$SELECT batchjob_fail(pg_temp.jid('q1'), 'x', true, 'w2')$$,
    '55000', format('job %s is not held by worker "w2"', pg_temp.jid('q1')),
    'worker: w2 cannot fail a job w1 holds (55000)');
SELECT is(pg_temp.others('{}'), (SELECT v FROM snap WHERE name = 'held by w1'),
    'worker: ... and nothing changed');
RESET ROLE;

/* ---- submitter: what it may do, and what it cannot misuse ---- */

SET ROLE bjt_priv_submitter;
SELECT is((SELECT count(*) FROM batch_jobs WHERE is_parent), 2::bigint,
    'submitter: reads batch_jobs with plain SELECT');
INSERT INTO ids SELECT 'r', job_id FROM batchjob_create_parent('{"t": "r"}', 'bjt_priv_submitter');
SELECT results_eq(
    $$SELECT status, created_by, is_parent FROM batch_jobs WHERE job_id = pg_temp.jid('r')$$,
    $$VALUES ('PENDING'::text, 'bjt_priv_submitter'::text, true)$$,
    'submitter: batchjob_create_parent creates a parent');
INSERT INTO ids SELECT 'r' || batch_number, job_id
    FROM batchjob_split(pg_temp.jid('r'), 30, 10);
SELECT is((SELECT count(*) FROM ids WHERE name ~ '^r[0-9]$'), 3::bigint,
    'submitter: batchjob_split creates three children');
INSERT INTO ids SELECT 'r4', job_id FROM batchjob_create_child(pg_temp.jid('r'), 4, 30, 5);
SELECT is((SELECT total_records FROM batch_jobs WHERE job_id = pg_temp.jid('r')), 35::bigint,
    'submitter: batchjob_create_child adds a fourth child; the parent''s total follows');
SELECT is(batchjob_cancel(pg_temp.jid('r4')), 1::bigint,
    'submitter: batchjob_cancel cancels one child');
SELECT is((batchjob_retry(pg_temp.jid('p4'))).status, 'PENDING',
    'submitter: batchjob_retry puts the FAILED p4 back to PENDING');
SELECT is((SELECT count(*) FROM batchjob_children(pg_temp.jid('r'))), 4::bigint,
    'submitter: batchjob_children works');
SELECT lives_ok($$SELECT * FROM batchjob_next_pending()$$,
    'submitter: batchjob_next_pending works');

INSERT INTO snap VALUES ('submitter misuse', pg_temp.others('{}'));
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('p1'), 1, 0, 10)$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('p1')),
    'submitter: batchjob_create_child into a plain job is refused (22023)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('solo'), 1, 0, 10)$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('solo')),
    'submitter: batchjob_create_child into a standalone job is refused (22023)');
SELECT throws_ok($$SELECT batchjob_create_child(-1, 1, 0, 10)$$,
    '23503', 'parent job -1 does not exist',
    'submitter: batchjob_create_child into no job is refused (23503)');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 's', parent_job_id => pg_temp.jid('p1'))$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('p1')),
    'submitter: batchjob_create_parent under a plain job is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('solo'), 10, 5)$$,
    '22023', format('job %s is not a parent job', pg_temp.jid('solo')),
    'submitter: batchjob_split of a plain job is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_split(pg_temp.jid('p'), 10, 5)$$,
    '55000', format('parent job %s already has children', pg_temp.jid('p')),
    'submitter: batchjob_split of a parent that has children is refused (55000)');
SELECT throws_ok($$SELECT batchjob_create_child(pg_temp.jid('p'), 1, 0, 10)$$,
    '23505', format('parent job %s already has a batch 1', pg_temp.jid('p')),
    'submitter: batchjob_create_child cannot overwrite an existing batch (23505)');
SELECT throws_ok($$SELECT batchjob_retry(pg_temp.jid('p3'))$$,
    '55000', NULL, 'submitter: batchjob_retry of a COMPLETED job is refused (55000)');
SELECT is(pg_temp.others('{}'), (SELECT v FROM snap WHERE name = 'submitter misuse'),
    'submitter: the refused calls changed no row at all');

INSERT INTO snap VALUES ('cancel r', pg_temp.others('{r, r1, r2, r3, r4}'));
SELECT is(batchjob_cancel(pg_temp.jid('r')), 3::bigint,
    'submitter: batchjob_cancel of r cancels its three unfinished children');
SELECT is(pg_temp.others('{r, r1, r2, r3, r4}'), (SELECT v FROM snap WHERE name = 'cancel r'),
    'submitter: ... and touched no job outside r''s family');
SELECT results_eq($$SELECT * FROM batchjob_child_counts(pg_temp.jid('r'))$$,
    $$VALUES (0::bigint, 0::bigint, 0::bigint, 0::bigint, 4::bigint, 4::bigint)$$,
    'submitter: batchjob_child_counts shows all four of r''s children cancelled');
RESET ROLE;

/* ---- admin: everything ---- */

SET ROLE bjt_priv_admin;
WITH j AS (INSERT INTO batch_jobs (is_parent, created_by) VALUES (true, 'ops')
           RETURNING job_id)
    INSERT INTO ids SELECT 'a', job_id FROM j;
WITH j AS (INSERT INTO batch_jobs (parent_job_id, batch_number, batch_offset,
                                   batch_size, total_records, run_at, created_by)
           VALUES (pg_temp.jid('a'), 1, 0, 10, 10, 'infinity', 'ops'),
                  (pg_temp.jid('a'), 2, 10, 10, 10, 'infinity', 'ops')
           RETURNING job_id, batch_number)
    INSERT INTO ids SELECT 'a' || batch_number, job_id FROM j;
SELECT results_eq(
    $$SELECT status, child_pending, total_records FROM batch_jobs WHERE job_id = pg_temp.jid('a')$$,
    $$VALUES ('PENDING'::text, 2::bigint, 20::bigint)$$,
    'admin: plain INSERTs of a parent and two children roll up');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('a1');
UPDATE batch_jobs SET status = 'COMPLETED', processed_records = 10, success_count = 10
 WHERE job_id = pg_temp.jid('a1');
SELECT results_eq(
    $$SELECT status, child_pending, child_completed, processed_records, success_count
        FROM batch_jobs WHERE job_id = pg_temp.jid('a')$$,
    $$VALUES ('PROCESSING'::text, 1::bigint, 1::bigint, 10::bigint, 10::bigint)$$,
    'admin: plain UPDATEs of a child roll up to its parent');
INSERT INTO snap SELECT 'a rolled up', to_jsonb(j) - 'updated_at' FROM batch_jobs j
 WHERE job_id = pg_temp.jid('a');
SELECT is(to_jsonb(batchjob_refresh_parent(pg_temp.jid('a'))) - 'updated_at',
    (SELECT v FROM snap WHERE name = 'a rolled up'),
    'admin: batchjob_refresh_parent agrees with the rollup');
SELECT lives_ok($$SELECT batchjob_fold()$$, 'admin: batchjob_fold() works');
SELECT throws_ok($$SELECT batchjob_hold_folder_busy(true)$$,
    '42501', 'must be superuser to hold the folder''s busy lock',
    'admin: batchjob_hold_folder_busy, a superuser''s test hook, is refused (42501)');
SELECT is(batchjob_fold(pg_temp.jid('a')), 1::bigint, 'admin: batchjob_fold(parent) works');
SELECT is(batchjob_reap(), 0::bigint, 'admin: batchjob_reap works (no lease has expired)');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$,
    'admin: batchjob_verify works and finds nothing wrong');
UPDATE batch_jobs SET run_at = 'infinity' WHERE status = 'PENDING' AND NOT is_parent;
UPDATE batch_jobs SET run_at = now() - interval '1 second' WHERE job_id = pg_temp.jid('a2');
SELECT is((SELECT job_id FROM batchjob_claim('ops')), pg_temp.jid('a2'),
    'admin: batchjob_claim works');
SELECT is((batchjob_complete(pg_temp.jid('a2'), 'ops')).status, 'COMPLETED',
    'admin: batchjob_complete works');
SELECT is((SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid('a')), 'COMPLETED',
    'admin: ... and its parent finished');
SELECT lives_ok($$SELECT count(*) FROM batch_job_deltas$$,
    'admin: reads batch_job_deltas');
DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('a');
SELECT is((SELECT count(*) FROM batch_jobs
            WHERE job_id IN (pg_temp.jid('a'), pg_temp.jid('a1'), pg_temp.jid('a2'))),
    0::bigint, 'admin: plain DELETE of a parent removes it and its children');
SELECT lives_ok($$SELECT batchjob_grant('bjt_priv_nobody', 'worker')$$,
    'admin: batchjob_grant works');
SELECT ok(has_function_privilege('bjt_priv_nobody', 'batchjob_claim(text,integer,interval)', 'EXECUTE'),
    'admin: ... and the role it named may claim now');
SELECT lives_ok($$SELECT batchjob_revoke('bjt_priv_nobody')$$,
    'admin: batchjob_revoke works');
SELECT ok(NOT has_function_privilege('bjt_priv_nobody', 'batchjob_claim(text,integer,interval)', 'EXECUTE'),
    'admin: ... and the role it named may not claim any more');
SELECT is_empty($$SELECT * FROM batchjob_verify()$$,
    'admin: after all of the above, batchjob_verify finds nothing wrong');
RESET ROLE;

/* ---- batchjob_grant's own errors ---- */

SELECT throws_ok($$SELECT batchjob_grant('bjt_priv_nobody', 'root')$$,
    '22023', 'unknown access level "root"',
    'grant: an unknown level is refused (22023)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_priv_nobody', 'Admin')$$,
    '22023', 'unknown access level "Admin"',
    'grant: levels are case-sensitive (22023)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_priv_nobody', '')$$,
    '22023', 'unknown access level ""',
    'grant: an empty level is refused (22023)');
SELECT throws_ok($$SELECT batchjob_grant(NULL, 'worker')$$,
    '22004', NULL, 'grant: a NULL role is refused (22004)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_priv_nobody', NULL)$$,
    '22004', NULL, 'grant: a NULL level is refused (22004)');
SELECT throws_ok($$SELECT batchjob_revoke(NULL)$$,
    '22004', NULL, 'revoke: a NULL role is refused (22004)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_priv_no_such_role', 'worker')$$,
    '42704', NULL, 'grant: a role that does not exist is refused (42704)');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.proname LIKE 'batchjob\_%'
                   AND has_function_privilege('bjt_priv_nobody', p.oid, 'EXECUTE')
                 ORDER BY 1),
    ARRAY['batchjob_child_total(bigint,bigint,bigint,bigint,bigint)',
          'batchjob_row_check(text,text,boolean,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,integer,bigint,integer,integer,integer)',
          'batchjob_tenant_visible(text)'],
    'grant: the refused grants gave the role nothing (but the PUBLIC functions)');

SELECT lives_ok($$SELECT batchjob_grant('"bjt_priv_x; DROP TABLE batch_jobs; --"', 'admin')$$,
    'grant: a role whose name is an SQL injection gets its grants');
SELECT ok(has_table_privilege('bjt_priv_x; DROP TABLE batch_jobs; --', 'batch_jobs', 'UPDATE')
          AND has_function_privilege('bjt_priv_x; DROP TABLE batch_jobs; --',
                                     'batchjob_reap()', 'EXECUTE'),
    'grant: ... exactly as any other role (the name is quoted, not pasted)');
SELECT lives_ok($$SELECT batchjob_revoke('"bjt_priv_x; DROP TABLE batch_jobs; --"')$$,
    'revoke: the same role loses its grants');
SELECT ok(NOT has_table_privilege('bjt_priv_x; DROP TABLE batch_jobs; --', 'batch_jobs', 'SELECT'),
    'revoke: ... and cannot read batch_jobs any more');
SELECT has_table('public', 'batch_jobs', 'grant: batch_jobs is still there');

-- granting twice, and granting a second level, adds up
SELECT batchjob_grant('bjt_priv_nobody', 'worker');
SELECT batchjob_grant('bjt_priv_nobody', 'worker');
SELECT batchjob_grant('bjt_priv_nobody', 'submitter');
SELECT ok(has_function_privilege('bjt_priv_nobody', 'batchjob_claim(text,integer,interval)', 'EXECUTE')
          AND has_function_privilege('bjt_priv_nobody', 'batchjob_split(bigint,bigint,integer)', 'EXECUTE')
          AND NOT has_function_privilege('bjt_priv_nobody', 'batchjob_reap()', 'EXECUTE')
          AND NOT has_table_privilege('bjt_priv_nobody', 'batch_jobs', 'UPDATE'),
    'grant: worker twice, then submitter, gives the union of both and no more');
SELECT batchjob_revoke('bjt_priv_nobody');

/* ---- batchjob_revoke takes everything back ---- */

SELECT batchjob_revoke(role::text::regrole) FROM roles;
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.proname LIKE 'batchjob\_%'
                   AND has_function_privilege(r.role, p.oid, 'EXECUTE')
                 ORDER BY 1),
    ARRAY['batchjob_child_total(bigint,bigint,bigint,bigint,bigint)',
          'batchjob_row_check(text,text,boolean,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,bigint,integer,bigint,integer,integer,integer)',
          'batchjob_tenant_visible(text)'],
    format('revoke: %s may execute no batchjob function (but the PUBLIC batchjob_tenant_visible, batchjob_child_total and batchjob_row_check)', r.level))
  FROM (SELECT * FROM roles ORDER BY level) r;
SELECT is(ARRAY(SELECT rel || ' ' || p
                  FROM unnest(ARRAY['batch_jobs', 'batch_job_progress', 'batch_job_figures',
                                    'batch_job_deltas', 'batch_job_workers', 'batch_job_submitters',
                                    'batch_job_followups', 'batch_jobs_archive',
                                    'batch_jobs_job_id_seq']) rel,
                       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                    'REFERENCES', 'TRIGGER', 'USAGE']) p
                 WHERE CASE WHEN rel NOT LIKE '%seq' AND p <> 'USAGE'
                            THEN has_table_privilege(r.role, 'public.' || rel, p)
                            WHEN rel LIKE '%seq' AND p IN ('SELECT', 'UPDATE', 'USAGE')
                            THEN has_sequence_privilege(r.role, 'public.' || rel, p)
                            ELSE false END),
    ARRAY[]::text[],
    format('revoke: %s holds no privilege on any batchjob relation', r.level))
  FROM (SELECT * FROM roles ORDER BY level) r;
SELECT is((SELECT count(*) FROM batch_job_workers
            WHERE worker IN ('bjt_priv_worker'::regrole, 'bjt_priv_nobody'::regrole)),
    0::bigint, 'revoke: the worker is no longer listed in batch_job_workers');

SET ROLE bjt_priv_worker;
SELECT throws_ok($$SELECT * FROM batchjob_claim('w1')$$,
    '42501', 'permission denied for function batchjob_claim',
    'revoke: the worker cannot claim any more (42501)');
SELECT throws_ok($$SELECT count(*) FROM batch_jobs$$,
    '42501', 'permission denied for table batch_jobs',
    'revoke: the worker cannot read batch_jobs any more (42501)');
RESET ROLE;
SET ROLE bjt_priv_submitter;
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 's')$$,
    '42501', 'permission denied for function batchjob_create_parent',
    'revoke: the submitter cannot create parents any more (42501)');
RESET ROLE;
SET ROLE bjt_priv_admin;
SELECT throws_ok($$UPDATE batch_jobs SET priority = 1$$,
    '42501', 'permission denied for table batch_jobs',
    'revoke: the admin cannot UPDATE batch_jobs any more (42501)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_priv_admin', 'admin')$$,
    '42501', 'permission denied for function batchjob_grant',
    'revoke: the admin cannot grant itself back (42501)');
RESET ROLE;

SELECT is_empty($$SELECT * FROM batchjob_verify()$$,
    'after everything, batchjob_verify finds nothing wrong');

SELECT * FROM finish();
ROLLBACK;
