/*
 * test/complete_and_claim.sql - pgTAP: batchjob_complete_and_claim(done,
 * worker, max_jobs, lease), a worker's turn in one call (1.2).
 *
 * - With done NULL or empty it claims as batchjob_claim does (defaults: one
 *   job, a lease of 5 minutes).
 * - It completes the jobs of done (duplicates and NULLs ignored) and then
 *   claims the next ones, never the jobs just completed; the parents'
 *   counters show both.
 * - Every error of batchjob_complete(done, worker) and of batchjob_claim,
 *   with its SQLSTATE, and after any of them nothing changed: no job of
 *   done completed, no job claimed.
 * - Privileges: a worker may call it; a submitter may not (42501).  With
 *   tenant isolation on, a job of another tenant in done is reported as
 *   missing (P0002), and only the worker's tenants' jobs are claimed.
 *
 * The shared fixture empties the table inside the test transaction, so
 * that claims take exactly the jobs made here.
 */
BEGIN;
SELECT plan(35);
\ir pgtap/fixture.sql

CREATE ROLE bjt_cc_worker;
CREATE ROLE bjt_cc_submitter;
CREATE ROLE bjt_cc_tw;
SELECT batchjob_grant('bjt_cc_worker', 'worker');
SELECT batchjob_grant('bjt_cc_submitter', 'submitter');
SELECT batchjob_grant('bjt_cc_tw', 'worker', ARRAY['bjt_cc_submitter']);

CREATE FUNCTION pg_temp.jids(VARIADIC text[]) RETURNS bigint[] LANGUAGE sql STABLE
    AS $$ SELECT array_agg(pg_temp.jid(n) ORDER BY o) FROM unnest($1) WITH ORDINALITY u(n, o) $$;
-- Every row of the table, as one value: what a refused call must not change.
CREATE FUNCTION pg_temp.everything() RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT jsonb_agg(to_jsonb(j) ORDER BY j.job_id) FROM batch_jobs j $$;
CREATE TEMP TABLE snap (name text PRIMARY KEY, v jsonb);
GRANT ALL ON snap TO PUBLIC;

-- parent P with children C1..C6 of 10 records, claimed in that order
INSERT INTO ids SELECT 'P', job_id FROM batchjob_create_parent('{}', 'cc');
INSERT INTO ids SELECT 'C' || batch_number, job_id
  FROM batchjob_split(pg_temp.jid('P'), 60, 10);

-- claims only, defaults
SELECT results_eq(
    $$SELECT job_id, status, locked_by, attempts
        FROM batchjob_complete_and_claim(NULL, 'w1')$$,
    $$VALUES (pg_temp.jid('C1'), 'PROCESSING'::text, 'w1'::text, 1)$$,
    'done NULL: claims one job, as batchjob_claim does');
SELECT ok((SELECT locked_until BETWEEN clock_timestamp() + interval '4 minutes'
                                   AND clock_timestamp() + interval '5 minutes'
             FROM batch_jobs WHERE job_id = pg_temp.jid('C1')),
    'the default lease is 5 minutes');
SELECT results_eq(
    $$SELECT job_id FROM batchjob_complete_and_claim('{}', 'w1', 2, '1 hour')$$,
    $$VALUES (pg_temp.jid('C2')), (pg_temp.jid('C3'))$$,
    'done empty: claims max_jobs jobs');
SELECT ok((SELECT locked_until > clock_timestamp() + interval '59 minutes'
             FROM batch_jobs WHERE job_id = pg_temp.jid('C2')),
    'the lease given is used');
SELECT is((SELECT child_processing FROM batch_jobs WHERE job_id = pg_temp.jid('P')),
    3::bigint, 'the parent counts the three claimed jobs as processing');

-- complete and claim; duplicates and NULLs in done are ignored
SELECT results_eq(
    $$SELECT job_id, status, locked_by
        FROM batchjob_complete_and_claim(
                 ARRAY[pg_temp.jid('C1'), pg_temp.jid('C2'), NULL, pg_temp.jid('C1')],
                 'w1', 2)$$,
    $$VALUES (pg_temp.jid('C4'), 'PROCESSING'::text, 'w1'::text),
             (pg_temp.jid('C5'), 'PROCESSING'::text, 'w1'::text)$$,
    'completes done, then claims the next jobs');
SELECT results_eq(
    $$SELECT status FROM batch_jobs
       WHERE job_id = ANY (pg_temp.jids('C1', 'C2', 'C3')) ORDER BY job_id$$,
    $$VALUES ('COMPLETED'::text), ('COMPLETED'::text), ('PROCESSING'::text)$$,
    'the jobs of done are COMPLETED, the one not named still PROCESSING');
SELECT results_eq(
    $$SELECT child_completed, child_processing, child_pending
        FROM batch_jobs WHERE job_id = pg_temp.jid('P')$$,
    $$VALUES (2::bigint, 3::bigint, 1::bigint)$$,
    'the parent shows both the completions and the claims at once');

-- every error, and nothing changed after it
INSERT INTO snap VALUES ('before errors', pg_temp.everything());
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(NULL, NULL)$$,
    '22004', 'worker must not be null', 'NULL worker (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(NULL, 'w1', NULL)$$,
    '22004', 'max_jobs must not be null', 'NULL max_jobs (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(NULL, 'w1', 1, NULL)$$,
    '22004', 'lease must not be null', 'NULL lease (22004)');
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(NULL, 'w1', 0)$$,
    '22023', 'max_jobs must be between 1 and 1000: 0', 'max_jobs 0 (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(NULL, 'w1', 1001)$$,
    '22023', 'max_jobs must be between 1 and 1000: 1001', 'max_jobs above 1000 (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(NULL, 'w1', 1, '-1 minute')$$,
    '22023', 'lease must be a positive interval: -00:01:00', 'negative lease (22023)');
SELECT throws_ok(
    $$SELECT * FROM batchjob_complete_and_claim(pg_temp.jids('C3', 'C1'), 'w1')$$,
    '55000', format('job %s is COMPLETED, not PROCESSING', pg_temp.jid('C1')),
    'a job of done that is not PROCESSING (55000), all or nothing');
SELECT throws_ok(
    $$SELECT * FROM batchjob_complete_and_claim(pg_temp.jids('C3', 'C6'), 'w1')$$,
    '55000', format('job %s is PENDING, not PROCESSING', pg_temp.jid('C6')),
    'a PENDING job in done (55000)');
SELECT throws_ok(
    $$SELECT * FROM batchjob_complete_and_claim(pg_temp.jids('C3'), 'w2')$$,
    '55000', format('job %s is not held by worker "w2"', pg_temp.jid('C3')),
    'a job another worker holds (55000)');
SELECT throws_ok(
    $$SELECT * FROM batchjob_complete_and_claim(pg_temp.jids('C3', 'P'), 'w1')$$,
    '22023', format('job %s is a parent job', pg_temp.jid('P')),
    'a parent in done (22023)');
SELECT throws_ok(
    $$SELECT * FROM batchjob_complete_and_claim(ARRAY[pg_temp.jid('C3'), -5], 'w1')$$,
    'P0002', 'job -5 does not exist', 'a job that does not exist (P0002)');
SELECT is(pg_temp.everything(), (SELECT v FROM snap WHERE name = 'before errors'),
    'after every refused call nothing changed: nothing completed, nothing claimed');

-- the queue runs dry: completes, claims nothing
SELECT results_eq(
    $$SELECT job_id FROM batchjob_complete_and_claim(pg_temp.jids('C3', 'C4', 'C5'), 'w1', 5)$$,
    $$VALUES (pg_temp.jid('C6'))$$,
    'fewer jobs left than max_jobs: claims what there is');
SELECT is_empty(
    $$SELECT job_id FROM batchjob_complete_and_claim(pg_temp.jids('C6'), 'w1', 5)$$,
    'an empty queue: completes done and returns no job');
SELECT results_eq(
    $$SELECT status, child_completed FROM batch_jobs WHERE job_id = pg_temp.jid('P')$$,
    $$VALUES ('COMPLETED'::text, 6::bigint)$$,
    'the parent finished with its last child');

-- privileges: worker yes, submitter no
INSERT INTO ids SELECT 'Q', job_id FROM batchjob_create_parent('{}', 'cc');
INSERT INTO ids SELECT 'D' || batch_number, job_id
  FROM batchjob_split(pg_temp.jid('Q'), 20, 10);
SET ROLE bjt_cc_submitter;
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(NULL, 'w')$$,
    '42501', 'permission denied for function batchjob_complete_and_claim',
    'a submitter may not call it (42501)');
RESET ROLE;
SET ROLE bjt_cc_worker;
SELECT results_eq($$SELECT job_id FROM batchjob_complete_and_claim(NULL, 'wk')$$,
    $$VALUES (pg_temp.jid('D1'))$$, 'a worker claims with it');
SELECT results_eq($$SELECT job_id FROM batchjob_complete_and_claim(pg_temp.jids('D1'), 'wk')$$,
    $$VALUES (pg_temp.jid('D2'))$$, 'a worker completes and claims with it');
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(pg_temp.jids('D2'), 'other')$$,
    '55000', format('job %s is not held by worker "other"', pg_temp.jid('D2')),
    'a worker completes only the jobs its worker name holds (55000)');
RESET ROLE;
SELECT is((SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid('D1')), 'COMPLETED',
    'the worker''s completion is stored');
SELECT is((SELECT locked_by FROM batch_jobs WHERE job_id = pg_temp.jid('D2')), 'wk',
    'the worker''s claim is stored');
SELECT ok(has_function_privilege('bjt_cc_worker',
    'batchjob_complete_and_claim(bigint[], text, integer, interval)', 'EXECUTE'),
    'batchjob_grant gives workers EXECUTE on it');
SELECT ok(NOT has_function_privilege('public',
    'batchjob_complete_and_claim(bigint[], text, integer, interval)', 'EXECUTE'),
    'PUBLIC has no EXECUTE on it');

-- tenant isolation: another tenant's job in done is missing; claims stay in scope
SET ROLE bjt_cc_submitter;
INSERT INTO ids SELECT 'S', job_id FROM batchjob_create_parent('{}', 'bjt_cc_submitter');
INSERT INTO ids SELECT 'E' || batch_number, job_id
  FROM batchjob_split(pg_temp.jid('S'), 20, 10);
RESET ROLE;
SET LOCAL batchjob.tenant_isolation = on;
SET ROLE bjt_cc_tw;
SELECT results_eq($$SELECT job_id FROM batchjob_complete_and_claim(NULL, 'tw', 5)$$,
    $$VALUES (pg_temp.jid('E1')), (pg_temp.jid('E2'))$$,
    'with isolation on, a tenant worker claims only its tenants'' jobs');
SELECT throws_ok($$SELECT * FROM batchjob_complete_and_claim(pg_temp.jids('E1', 'D2'), 'tw')$$,
    'P0002', format('job %s does not exist', pg_temp.jid('D2')),
    'another tenant''s job in done is reported as missing (P0002)');
SELECT is_empty($$SELECT job_id FROM batchjob_complete_and_claim(pg_temp.jids('E1', 'E2'), 'tw')$$,
    'its own jobs complete; nothing of its tenants is left to claim');
RESET ROLE;
SELECT results_eq(
    $$SELECT status FROM batch_jobs WHERE job_id = ANY (pg_temp.jids('E1', 'E2', 'D2')) ORDER BY job_id$$,
    $$VALUES ('PROCESSING'::text), ('COMPLETED'::text), ('COMPLETED'::text)$$,
    'the other tenant''s job D2 is untouched, E1 and E2 completed');

SELECT * FROM finish();
ROLLBACK;
