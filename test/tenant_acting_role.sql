/*
 * test/tenant_acting_role.sql - pgTAP: with batchjob.tenant_isolation on,
 * the role a function judges is the current user at the call, not the
 * outer (session or SET ROLE) user.
 *
 * The attacks: bob, a submitter, writes SECURITY DEFINER functions of his
 * own that call batchjob functions on alice's jobs, and gets an admin, or
 * a worker serving every tenant, to run them; and he puts such a call into
 * an index expression on his own table, which a superuser's ANALYZE
 * evaluates as bob.  Each must be refused or limited exactly as when bob
 * calls the function himself.
 */
BEGIN;
SELECT plan(16);
\ir pgtap/fixture.sql

CREATE ROLE bjr_alice;
CREATE ROLE bjr_bob;
CREATE ROLE bjr_worker_all;
CREATE ROLE bjr_ops;
SELECT batchjob_grant('bjr_alice', 'submitter');
SELECT batchjob_grant('bjr_bob', 'submitter');
SELECT batchjob_grant('bjr_worker_all', 'worker');
SELECT batchjob_grant('bjr_ops', 'admin');

-- The error a statement raises, as SQLSTATE: message (detail) [hint];
-- 'no error' when it raises none.
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN format('%s: %s (%s) [%s]', st, msg, det, hnt);
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;

SET ROLE bjr_alice;
INSERT INTO ids SELECT 'A', job_id FROM batchjob_create_parent('{}', 'bjr_alice');
INSERT INTO ids SELECT 'A' || batch_number, job_id
  FROM batchjob_split(pg_temp.jid('A'), 20, 10);
RESET ROLE;
SET ROLE bjr_bob;
INSERT INTO ids SELECT 'B', job_id FROM batchjob_create_parent('{}', 'bjr_bob');
INSERT INTO ids SELECT 'B' || batch_number, job_id
  FROM batchjob_split(pg_temp.jid('B'), 30, 10);
RESET ROLE;

-- bob's schema: his functions and his table are his own
CREATE SCHEMA bjr;
GRANT USAGE, CREATE ON SCHEMA bjr TO bjr_bob;
GRANT USAGE ON SCHEMA bjr TO PUBLIC;

SET ROLE bjr_bob;
CREATE FUNCTION bjr.bob_cancel(bigint) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_catalog
AS $$ SELECT batchjob_cancel($1) $$;
CREATE FUNCTION bjr.bob_children(bigint) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_catalog
AS $$ SELECT count(*) FROM batchjob_children($1) $$;
CREATE FUNCTION bjr.bob_counts(bigint) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_catalog
AS $$ SELECT total FROM batchjob_child_counts($1) $$;
CREATE FUNCTION bjr.bob_visible(text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_catalog
AS $$ SELECT batchjob_tenant_visible($1) $$;
RESET ROLE;

SET LOCAL batchjob.tenant_isolation = on;

/* ---- an admin runs bob's SECURITY DEFINER function ---- */

-- what bob gets calling his functions himself
CREATE TEMP TABLE seen (who text PRIMARY KEY, err text);
GRANT ALL ON seen TO PUBLIC;
SET ROLE bjr_bob;
INSERT INTO seen SELECT 'bob cancel', pg_temp.err(format('SELECT bjr.bob_cancel(%s)', pg_temp.jid('A')));
INSERT INTO seen SELECT 'bob children', pg_temp.err(format('SELECT bjr.bob_children(%s)', pg_temp.jid('A')));
INSERT INTO seen SELECT 'bob counts', pg_temp.err(format('SELECT bjr.bob_counts(%s)', pg_temp.jid('A')));
RESET ROLE;

SET ROLE bjr_ops;
SELECT is(pg_temp.err(format('SELECT bjr.bob_cancel(%s)', pg_temp.jid('A'))),
    (SELECT err FROM seen WHERE who = 'bob cancel'),
    'admin running bob''s function: batchjob_cancel of alice''s parent fails as when bob calls it');
SELECT is(pg_temp.err(format('SELECT bjr.bob_cancel(%s)', pg_temp.jid('A'))),
    format('P0002: job %s does not exist () []', pg_temp.jid('A')),
    '... with alice''s job as one that does not exist');
SELECT is(pg_temp.err(format('SELECT bjr.bob_children(%s)', pg_temp.jid('A'))),
    (SELECT err FROM seen WHERE who = 'bob children'),
    'admin running bob''s function: batchjob_children of alice''s parent fails as for bob');
SELECT is(pg_temp.err(format('SELECT bjr.bob_counts(%s)', pg_temp.jid('A'))),
    (SELECT err FROM seen WHERE who = 'bob counts'),
    'admin running bob''s function: batchjob_child_counts of alice''s parent fails as for bob');
SELECT is(bjr.bob_visible('bjr_alice'), false,
    'admin running bob''s function: batchjob_tenant_visible judges bob');
SELECT is(bjr.bob_cancel(pg_temp.jid('B2')), 1::bigint,
    'admin running bob''s function: bob''s own job is cancelled, as bob');
SELECT is(batchjob_tenant_visible('bjr_alice'), true,
    'the admin calling directly is still unrestricted');
RESET ROLE;

/* ---- a worker serving every tenant runs bob's function ---- */

SET ROLE bjr_worker_all;
SELECT is(pg_temp.err(format('SELECT bjr.bob_children(%s)', pg_temp.jid('A'))),
    (SELECT err FROM seen WHERE who = 'bob children'),
    'worker serving all running bob''s function: batchjob_children of alice''s parent fails as for bob');
SELECT is(pg_temp.err(format('SELECT bjr.bob_counts(%s)', pg_temp.jid('A'))),
    (SELECT err FROM seen WHERE who = 'bob counts'),
    'worker serving all running bob''s function: batchjob_child_counts fails as for bob');
SELECT is(bjr.bob_visible('bjr_alice'), false,
    'worker serving all running bob''s function: batchjob_tenant_visible judges bob');
SELECT is((SELECT total FROM batchjob_child_counts(pg_temp.jid('A'))), 2::bigint,
    'the worker calling directly still serves alice');
RESET ROLE;

SELECT results_eq(
    $$SELECT status FROM batch_jobs WHERE job_id IN (pg_temp.jid('A'), pg_temp.jid('A1'), pg_temp.jid('A2'))
       ORDER BY job_id$$,
    $$VALUES ('PENDING'::text), ('PENDING'), ('PENDING')$$,
    'alice''s jobs are untouched');

/*
 * ---- a superuser's ANALYZE evaluates bob's index expression ----
 *
 * ANALYZE evaluates the expressions of a table's indexes as the table's
 * owner, inside a security-restricted operation.  bob's expression calls
 * his probe, which, when the test asks (bjr.probe), reports what the
 * batchjob functions did for it by raising an error ANALYZE passes on.
 */
SET ROLE bjr_bob;
CREATE FUNCTION bjr.probe(x text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = public, pg_catalog
AS $$
DECLARE
    r text;
BEGIN
    CASE current_setting('bjr.probe', true)
    WHEN 'visible' THEN
        r := batchjob_tenant_visible('bjr_alice')::text;
    WHEN 'cancel' THEN
        BEGIN
            r := batchjob_cancel(x::bigint)::text;
        EXCEPTION WHEN OTHERS THEN
            r := SQLSTATE || ' ' || SQLERRM;
        END;
    ELSE
        RETURN x;
    END CASE;
    RAISE EXCEPTION 'probe: %', r;
END
$$;
CREATE TABLE bjr.t (x text);
CREATE INDEX ON bjr.t (bjr.probe(x));
INSERT INTO bjr.t SELECT pg_temp.jid('A1')::text;
RESET ROLE;

SELECT ok(current_user = 'postgres' AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
    'ANALYZE runs as a superuser');
SET LOCAL bjr.probe = 'visible';
SELECT throws_ok('ANALYZE bjr.t', 'P0001', 'probe: false',
    'ANALYZE: batchjob_tenant_visible in bob''s index expression judges bob, not the superuser');
SET LOCAL bjr.probe = 'cancel';
SELECT throws_ok('ANALYZE bjr.t', 'P0001',
    format('probe: P0002 job %s does not exist', pg_temp.jid('A1')),
    'ANALYZE: batchjob_cancel in bob''s index expression cannot cancel alice''s job');
SET LOCAL bjr.probe = '';
SELECT is((SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid('A1')), 'PENDING',
    'alice''s job is still PENDING');

SELECT * FROM finish();
ROLLBACK;
