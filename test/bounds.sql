/*
 * test/bounds.sql - pgTAP: the bounds on one call (1.2) and the grants
 * that close the smaller leaks of tenant isolation.
 *
 * - Each bound at its limit works; one past it is refused with 22023 and
 *   the exact message, and changes nothing: max_jobs of batchjob_claim
 *   (1..1000), the batches of one batchjob_split (100,000), total_records
 *   (2^48), and a submitter's priority ceiling (batchjob_grant's
 *   max_priority, 0 when not given; admins unlimited).
 * - batchjob_grant refuses a tenant list holding NULL (22004); a stored list
 *   with a NULL still works.
 * - batchjob_revoke takes back USAGE on the schema, unless the role holds a
 *   privilege on something else in it.
 * - A member of pg_write_all_data is an admin: it sees every tenant.
 * - batchjob_guard has its search_path pinned.
 */
BEGIN;
SELECT plan(46);
\ir pgtap/fixture.sql

CREATE ROLE bjt_bd_sub;
CREATE ROLE bjt_bd_sub2;
CREATE ROLE bjt_bd_worker;
CREATE ROLE bjt_bd_writer IN ROLE pg_write_all_data;
SELECT batchjob_grant('bjt_bd_sub', 'submitter');
SELECT batchjob_grant('bjt_bd_sub2', 'submitter', max_priority => 100);
SELECT batchjob_grant('bjt_bd_writer', 'submitter');

-- everything but the jobs named, and the job count, as one value
CREATE FUNCTION pg_temp.all_jobs() RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT COALESCE(jsonb_agg(to_jsonb(j) ORDER BY j.job_id), '[]')
            FROM batch_jobs j $$;
CREATE TEMP TABLE snap (v jsonb);
GRANT ALL ON snap TO PUBLIC;

/* ---- max_jobs: 1 to 1000 ---- */

INSERT INTO ids SELECT 'c', job_id FROM batchjob_create_parent('{}', 'bjt_bd_sub');
SELECT count(*) FROM batchjob_split((SELECT id FROM ids WHERE name = 'c'), 1001, 1);

INSERT INTO snap SELECT pg_temp.all_jobs();
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 1001)$$,
    '22023', 'max_jobs must be between 1 and 1000: 1001',
    'claim: max_jobs 1001 is refused (22023)');
SELECT throws_ok($$SELECT * FROM batchjob_claim('w', 2147483647)$$,
    '22023', 'max_jobs must be between 1 and 1000: 2147483647',
    'claim: the largest int as max_jobs is refused (22023)');
SELECT is(pg_temp.all_jobs(), (SELECT v FROM snap), 'claim: the refused claims changed nothing');
SELECT is((SELECT count(*) FROM batchjob_claim('w', 1000)), 1000::bigint,
    'claim: max_jobs 1000 takes 1000 jobs');
SELECT is((SELECT count(*) FROM batch_jobs WHERE status = 'PENDING' AND NOT is_parent),
    1::bigint, 'claim: ... and leaves the 1001st');

/* ---- total_records: at most 2^48 ---- */

DELETE FROM snap;
INSERT INTO snap SELECT pg_temp.all_jobs();
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'x', 0, 281474976710657)$$,
    '22023', 'total_records must be at most 281474976710656: 281474976710657',
    'create_parent: total_records 2^48 + 1 is refused (22023)');
INSERT INTO ids SELECT 'z', job_id FROM batchjob_create_parent('{}', 'x');
DELETE FROM snap;
INSERT INTO snap SELECT pg_temp.all_jobs();
SELECT throws_ok(format($$SELECT count(*) FROM batchjob_split(%s, 281474976710657, 2147483647)$$,
                        (SELECT id FROM ids WHERE name = 'z')),
    '22023', 'total_records must be at most 281474976710656: 281474976710657',
    'split: total_records 2^48 + 1 is refused (22023)');
SELECT is(pg_temp.all_jobs(), (SELECT v FROM snap), 'total_records: the refused calls changed nothing');
SELECT is((batchjob_create_parent('{}', 'x', 0, 281474976710656)).total_records,
    281474976710656::bigint, 'create_parent: total_records 2^48 is accepted');
-- two such nested parents: the sum above them is still far from the range
SELECT is((batchjob_create_parent('{}', 'x', 0, 281474976710656, 'continue',
           (SELECT id FROM ids WHERE name = 'z'))).total_records,
    281474976710656::bigint, 'create_parent: a nested parent of 2^48 records');
SELECT is((batchjob_create_parent('{}', 'x', 0, 281474976710656, 'continue',
           (SELECT id FROM ids WHERE name = 'z'))).total_records,
    281474976710656::bigint, 'create_parent: a second one under the same parent');
SELECT batchjob_fold((SELECT id FROM ids WHERE name = 'z'));
SELECT is((SELECT total_records FROM batch_jobs WHERE job_id = (SELECT id FROM ids WHERE name = 'z')),
    562949953421312::bigint, 'total_records: the parent above sums them (2^49)');

/* ---- priority: a submitter's ceiling ---- */

INSERT INTO ids SELECT 'admin_p', job_id FROM batchjob_create_parent('{}', 'bjt_bd_sub', 2147483647);
SELECT is((SELECT priority FROM batch_jobs WHERE job_id = (SELECT id FROM ids WHERE name = 'admin_p')),
    2147483647, 'priority: a superuser sets any priority');
SELECT is((SELECT max_priority FROM batch_job_submitters WHERE submitter = 'bjt_bd_sub'::regrole),
    0, 'grant: a submitter given no max_priority gets a ceiling of 0');

DELETE FROM snap;
INSERT INTO snap SELECT pg_temp.all_jobs();
SET ROLE bjt_bd_sub;
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'bjt_bd_sub', 1)$$,
    '22023', 'priority must be at most 0 for role "bjt_bd_sub": 1',
    'priority: a submitter without a ceiling may not go above 0 (22023)');
SELECT throws_ok(format($$SELECT batchjob_create_child(%s, 1, 0, 10, NULL, 1)$$,
                        (SELECT id FROM ids WHERE name = 'admin_p')),
    '22023', 'priority must be at most 0 for role "bjt_bd_sub": 1',
    'priority: ... nor give a child more (22023)');
RESET ROLE;
SELECT is(pg_temp.all_jobs(), (SELECT v FROM snap), 'priority: the refused calls changed nothing');
SET ROLE bjt_bd_sub;
SELECT is((batchjob_create_parent('{}', 'bjt_bd_sub', 0)).priority, 0,
    'priority: 0 is within the default ceiling');
SELECT is((batchjob_create_parent('{}', 'bjt_bd_sub', -2147483648)).priority, -2147483648,
    'priority: a submitter may always put its jobs behind');
-- a child without a priority takes its parent's, set by an admin
SELECT is((batchjob_create_child((SELECT id FROM ids WHERE name = 'admin_p'), 1, 0, 10)).priority,
    2147483647, 'priority: a child inherits the priority an admin gave its parent');
RESET ROLE;

DELETE FROM snap;
INSERT INTO snap SELECT pg_temp.all_jobs();
SET ROLE bjt_bd_sub2;
SELECT is((batchjob_create_parent('{}', 'bjt_bd_sub2', 100)).priority, 100,
    'priority: a submitter given max_priority 100 sets 100');
SELECT throws_ok($$SELECT batchjob_create_parent('{}', 'bjt_bd_sub2', 101)$$,
    '22023', 'priority must be at most 100 for role "bjt_bd_sub2": 101',
    'priority: ... and is refused 101 (22023)');
RESET ROLE;
SELECT is((SELECT count(*) FROM batch_jobs WHERE created_by = 'bjt_bd_sub2'), 1::bigint,
    'priority: only the call within the ceiling made a job');

SELECT batchjob_grant('bjt_bd_sub2', 'submitter');
SELECT is((SELECT max_priority FROM batch_job_submitters WHERE submitter = 'bjt_bd_sub2'::regrole),
    100, 'grant: granting submitter again without max_priority keeps the ceiling');
SELECT batchjob_grant('bjt_bd_sub2', 'submitter', max_priority => 5);
SELECT is((SELECT max_priority FROM batch_job_submitters WHERE submitter = 'bjt_bd_sub2'::regrole),
    5, 'grant: max_priority changes the ceiling');
SELECT throws_ok($$SELECT batchjob_grant('bjt_bd_sub2', 'submitter', max_priority => -1)$$,
    '22023', 'max_priority must not be negative: -1',
    'grant: a negative max_priority is refused (22023)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_bd_worker', 'worker', max_priority => 5)$$,
    '22023', 'only a submitter has a max_priority',
    'grant: max_priority for a worker is refused (22023)');
SELECT throws_ok($$SELECT batchjob_grant('bjt_bd_worker', 'admin', max_priority => 5)$$,
    '22023', 'only a submitter has a max_priority',
    'grant: max_priority for an admin is refused (22023)');

/* ---- a tenant list with NULL ---- */

SELECT throws_ok($$SELECT batchjob_grant('bjt_bd_worker', 'worker', ARRAY['bjt_bd_sub', NULL])$$,
    '22004', 'tenants must not contain NULL',
    'grant: a tenant list holding NULL is refused (22004)');
SELECT is((SELECT count(*) FROM batch_job_workers WHERE worker = 'bjt_bd_worker'::regrole),
    0::bigint, 'grant: ... and nothing was stored');
-- a list stored with a NULL (by an admin's INSERT, or before 1.2) still works
SELECT batchjob_grant('bjt_bd_worker', 'worker', ARRAY['bjt_bd_sub']);
UPDATE batch_job_workers SET tenants = ARRAY['bjt_bd_sub', NULL]
 WHERE worker = 'bjt_bd_worker'::regrole;
SET batchjob.tenant_isolation = on;
SET ROLE bjt_bd_worker;
SELECT lives_ok($$SELECT batchjob_next_pending()$$,
    'tenants: a worker whose stored list holds a NULL may still call');
SELECT is((SELECT count(*) FROM batchjob_claim('wn', 1)), 1::bigint,
    'tenants: ... and claims a job of the tenant it lists');
SELECT is((SELECT count(*) FROM batch_jobs WHERE created_by IS DISTINCT FROM 'bjt_bd_sub'
                                             AND created_by IS DISTINCT FROM 'bjt_bd_worker'),
    0::bigint, 'tenants: ... and the NULL lets it see no other tenant');
RESET ROLE;

/* ---- pg_write_all_data is an admin ---- */

SET ROLE bjt_bd_writer;
SELECT is((SELECT count(DISTINCT created_by) FROM batch_jobs), 3::bigint,
    'pg_write_all_data: a member sees every tenant under isolation (it may UPDATE any table)');
SELECT is((batchjob_create_parent('{}', 'bjt_bd_writer', 1000)).priority, 1000,
    'pg_write_all_data: ... and has no priority ceiling');
RESET ROLE;
RESET batchjob.tenant_isolation;

/* ---- batchjob_revoke and USAGE on the schema ---- */

CREATE FUNCTION pg_temp.has_usage(name) RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT EXISTS (SELECT FROM pg_namespace n, aclexplode(n.nspacl) a
                          WHERE n.nspname = 'public' AND a.grantee = $1::regrole
                            AND a.privilege_type = 'USAGE') $$;
SELECT ok(pg_temp.has_usage('bjt_bd_sub'), 'revoke: a submitter holds USAGE on the schema');
SELECT batchjob_revoke('bjt_bd_sub');
SELECT ok(NOT pg_temp.has_usage('bjt_bd_sub'), 'revoke: ... and no longer after batchjob_revoke');
SELECT is((SELECT count(*) FROM batch_job_submitters WHERE submitter = 'bjt_bd_sub'::regrole),
    0::bigint, 'revoke: ... nor a priority ceiling');
CREATE TABLE public.bjt_bd_other (x int);
GRANT SELECT ON public.bjt_bd_other TO bjt_bd_sub2;
SELECT batchjob_revoke('bjt_bd_sub2');
SELECT ok(pg_temp.has_usage('bjt_bd_sub2'),
    'revoke: USAGE stays for a role that holds a privilege on another object of the schema');
SELECT ok(NOT has_function_privilege('bjt_bd_sub2', 'batchjob_create_parent(jsonb,text,integer,bigint,text,bigint)', 'EXECUTE'),
    'revoke: ... though its batchjob access is gone');

/*
 * ---- functions without a SET clause ----
 * Every function of the extension pins search_path with a SET clause but
 * these: the row guard and the rollup, which run for every write (the
 * clause's save and restore of the settings is paid at each call; the
 * rollup pins search_path in C where it runs statements, which
 * test/t/018_hostile.pl drives under hostile paths); the CHECK
 * constraint's function, which runs no SQL; batchjob_child_total, a SQL
 * expression that a SET clause would keep from being inlined; and
 * batchjob_hold_folder_busy, which runs no SQL.
 */

SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname)
             FROM pg_proc p
             JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                             AND d.deptype = 'e'
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'batchjob'
            WHERE p.proconfig IS NULL),
    ARRAY['batchjob_child_total', 'batchjob_guard', 'batchjob_hold_folder_busy',
          'batchjob_rollup', 'batchjob_row_check'],
    'search_path: every function but five carries a SET clause');

/* ---- batchjob_split: at most 100,000 batches (last: its children are many) ---- */

INSERT INTO ids SELECT 's', job_id FROM batchjob_create_parent('{}', 'bjt_bd_sub');
DELETE FROM snap;
INSERT INTO snap SELECT pg_temp.all_jobs();
SELECT throws_ok(format($$SELECT count(*) FROM batchjob_split(%s, 100001, 1)$$,
                        (SELECT id FROM ids WHERE name = 's')),
    '22023', 'splitting 100001 records into batches of 1 needs 100001 batches, more than the 100000 one split may create',
    'split: 100,001 batches are refused (22023)');
SELECT throws_ok(format($$SELECT count(*) FROM batchjob_split(%s, 1000000001, 10000)$$,
                        (SELECT id FROM ids WHERE name = 's')),
    '22023', 'splitting 1000000001 records into batches of 10000 needs 100001 batches, more than the 100000 one split may create',
    'split: a remainder that makes batch 100,001 is refused (22023)');
SELECT is(pg_temp.all_jobs(), (SELECT v FROM snap), 'split: the refused splits changed nothing');
SELECT is((SELECT count(*) FROM batchjob_split((SELECT id FROM ids WHERE name = 's'), 100000, 1)),
    100000::bigint, 'split: 100,000 batches are created');
SELECT is((SELECT total_records FROM batch_jobs WHERE job_id = (SELECT id FROM ids WHERE name = 's')),
    100000::bigint, 'split: ... and the parent counts them');

SELECT * FROM finish();
ROLLBACK;
