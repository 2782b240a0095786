-- test/tenants.sql: batchjob.tenant_isolation, logged in as two tenants,
-- a worker serving one of them, a worker serving all, and an admin.
BEGIN;
SELECT plan(31);
\ir pgtap/fixture.sql

CREATE ROLE bjt_alice;
CREATE ROLE bjt_bob;
CREATE ROLE bjt_worker_b;
CREATE ROLE bjt_worker_all;
CREATE ROLE bjt_ops;
SELECT batchjob_grant('bjt_alice', 'submitter');
SELECT batchjob_grant('bjt_bob', 'submitter');
SELECT batchjob_grant('bjt_worker_b', 'worker', ARRAY['bjt_bob']);
SELECT batchjob_grant('bjt_worker_all', 'worker');
SELECT batchjob_grant('bjt_ops', 'admin');

-- isolation is off by default: every role sees every job
SET ROLE bjt_alice;
INSERT INTO ids SELECT 'A', job_id FROM batchjob_create_parent('{}', 'bjt_alice');
INSERT INTO ids SELECT 'A' || batch_number, job_id
  FROM batchjob_split((SELECT id FROM ids WHERE name = 'A'), 30, 10);
RESET ROLE;
SET ROLE bjt_bob;
INSERT INTO ids SELECT 'B', job_id FROM batchjob_create_parent('{}', 'bjt_bob');
INSERT INTO ids SELECT 'B' || batch_number, job_id
  FROM batchjob_split((SELECT id FROM ids WHERE name = 'B'), 20, 10);
SELECT is((SELECT count(*) FROM batch_jobs), 7::bigint,
    'isolation off: bob sees alice''s jobs too');
RESET ROLE;

SELECT is(current_setting('batchjob.tenant_isolation'), 'off', 'the setting is off by default');
SET LOCAL batchjob.tenant_isolation = on;

-- a submitter sees only its own jobs, through the table and the view
SET ROLE bjt_bob;
SELECT is((SELECT count(*) FROM batch_jobs), 3::bigint, 'bob sees his 3 jobs only');
SELECT is((SELECT array_agg(job_id ORDER BY job_id) FROM batch_job_progress),
    ARRAY[(SELECT id FROM ids WHERE name = 'B')], 'the progress view shows bob his parent only');
-- another tenant's job is, to bob, a job that does not exist
-- (test/tenant_existence.sql compares the two errors in full)
SELECT throws_ok(format('SELECT batchjob_cancel(%s)', (SELECT id FROM ids WHERE name = 'A')),
    'P0002', format('job %s does not exist', (SELECT id FROM ids WHERE name = 'A')),
    'bob cannot cancel alice''s parent: it does not exist for him');
SELECT throws_ok(format('SELECT batchjob_create_child(%s, 9, 900, 5)', (SELECT id FROM ids WHERE name = 'A')),
    '23503', format('parent job %s does not exist', (SELECT id FROM ids WHERE name = 'A')),
    'bob cannot add a child to alice''s parent');
SELECT throws_ok(format('SELECT count(*) FROM batchjob_split(%s, 10, 5)', (SELECT id FROM ids WHERE name = 'A')),
    '23503', NULL, 'bob cannot split alice''s parent');
SELECT throws_ok(format('SELECT * FROM batchjob_children(%s)', (SELECT id FROM ids WHERE name = 'A')),
    '23503', NULL, 'bob cannot list alice''s children');
SELECT throws_ok(format('SELECT * FROM batchjob_child_counts(%s)', (SELECT id FROM ids WHERE name = 'A')),
    '23503', NULL, 'bob cannot count alice''s children');
SELECT throws_ok(format('SELECT batchjob_retry(%s)', (SELECT id FROM ids WHERE name = 'A1')),
    'P0002', NULL, 'bob cannot retry alice''s job');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'bjt_alice')$$,
    '42501', 'permission denied to create jobs for tenant "bjt_alice"',
    'bob cannot create a parent in alice''s name');
SELECT is((SELECT count(*) FROM batchjob_children((SELECT id FROM ids WHERE name = 'B'))), 2::bigint,
    'bob lists his own children');
SELECT is(batchjob_cancel((SELECT id FROM ids WHERE name = 'B2')), 1::bigint,
    'bob cancels his own job');
RESET ROLE;

SET ROLE bjt_alice;
SELECT is((SELECT count(*) FROM batch_jobs), 4::bigint, 'alice sees her 4 jobs only');
SELECT is((SELECT count(*) FROM batch_jobs WHERE created_by = 'bjt_bob'), 0::bigint,
    'not even by asking for bob''s by name');
RESET ROLE;

-- a worker serving bob sees and claims only bob's jobs
SET ROLE bjt_worker_b;
SELECT is((SELECT count(*) FROM batch_jobs), 3::bigint, 'the worker serving bob sees bob''s jobs');
SELECT is((SELECT array_agg(created_by) FROM batchjob_claim('wb', 10)), ARRAY['bjt_bob'],
    'it claims bob''s one claimable job, none of alice''s');
SELECT is((SELECT count(*) FROM batchjob_claim('wb', 10)), 0::bigint,
    'and nothing more, though alice has 3 waiting');
SELECT is(batchjob_next_pending(), NULL, 'batchjob_next_pending shows it nothing of alice''s');
SELECT is(batchjob_heartbeat((SELECT id FROM ids WHERE name = 'A1'), 'wb'), false,
    'it cannot heartbeat alice''s job (false, as for a job that does not exist)');
SELECT throws_ok(format('SELECT batchjob_complete(%s, %L)', (SELECT id FROM ids WHERE name = 'A1'), 'wb'),
    'P0002', NULL, 'nor complete it');
SELECT throws_ok(format('SELECT batchjob_complete(ARRAY[%s, %s], %L)',
                        (SELECT id FROM ids WHERE name = 'B1'), (SELECT id FROM ids WHERE name = 'A1'), 'wb'),
    'P0002', format('job %s does not exist', (SELECT id FROM ids WHERE name = 'A1')),
    'nor slip it into a batch completion with one of bob''s');
SELECT is((batchjob_complete((SELECT id FROM ids WHERE name = 'B1'), 'wb')).status, 'COMPLETED',
    'it completes bob''s job');
RESET ROLE;

-- a worker given no list serves every tenant
SET ROLE bjt_worker_all;
SELECT is((SELECT count(*) FROM batch_jobs), 7::bigint, 'a worker serving all tenants sees every job');
SELECT is((SELECT count(*) FROM batchjob_claim('wall', 10)), 3::bigint,
    'and claims alice''s three');
RESET ROLE;

-- admins are never restricted
SET ROLE bjt_ops;
SELECT is((SELECT count(*) FROM batch_jobs), 7::bigint, 'an admin sees every job');
SELECT is((SELECT count(*) FROM batch_job_progress), 2::bigint, 'and every parent in the view');
RESET ROLE;

-- the figures stay exact whoever acted
SELECT is_empty('SELECT * FROM batchjob_verify()', 'batchjob_verify finds nothing wrong');

-- only a superuser may change the setting; batchjob_revoke forgets the tenants
SET ROLE bjt_ops;
SELECT throws_ok($$SET batchjob.tenant_isolation = off$$, '42501', NULL,
    'a non-superuser cannot turn isolation off');
RESET ROLE;
SELECT batchjob_revoke('bjt_worker_b');
SELECT is((SELECT count(*) FROM batch_job_workers WHERE worker = 'bjt_worker_b'::regrole), 0::bigint,
    'batchjob_revoke drops the worker''s tenant list');
SELECT throws_ok($$SELECT batchjob_grant('bjt_alice', 'submitter', ARRAY['x'])$$, '22023',
    'only a worker serves a list of tenants', 'a tenant list is only for workers');

SELECT * FROM finish();
ROLLBACK;
