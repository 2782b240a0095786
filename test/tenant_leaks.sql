-- test/tenant_leaks.sql: with batchjob.tenant_isolation on, nothing a
-- tenant writes into its own query shows it another tenant's jobs.
BEGIN;
SELECT plan(4);
\ir pgtap/fixture.sql

CREATE ROLE bjl_alice;
CREATE ROLE bjl_bob;
SELECT batchjob_grant('bjl_alice', 'submitter');
SELECT batchjob_grant('bjl_bob', 'submitter');

SET ROLE bjl_alice;
INSERT INTO ids SELECT 'A', job_id FROM batchjob_create_parent('{}', 'bjl_alice');
RESET ROLE;
SET ROLE bjl_bob;
INSERT INTO ids SELECT 'B', job_id FROM batchjob_create_parent('{}', 'bjl_bob');
RESET ROLE;
SET LOCAL batchjob.tenant_isolation = on;

-- The attack: a cheap function that records every row it is shown.  It
-- cannot write a table (it is not volatile), so it keeps what it saw in a
-- setting of the session.
CREATE FUNCTION pg_temp.leak(bigint, text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE COST 0.0001 AS $$
BEGIN
    PERFORM set_config('bjl.seen',
        coalesce(current_setting('bjl.seen', true), '') || ' ' || $1, false);
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.leak(bigint, text) TO PUBLIC;

SET ROLE bjl_bob;
SELECT set_config('bjl.seen', '', false);
SELECT is((SELECT count(*) FROM batch_job_progress WHERE pg_temp.leak(job_id, status)),
    1::bigint, 'the leaky query itself counts bob''s one parent');
SELECT is(trim(current_setting('bjl.seen')), (SELECT id::text FROM ids WHERE name = 'B'),
    'a leaky function in a query on batch_job_progress is shown bob''s parent only');
SELECT set_config('bjl.seen', '', false);
SELECT is((SELECT count(*) FROM batch_jobs WHERE pg_temp.leak(job_id, status)),
    1::bigint, 'the same query on batch_jobs counts bob''s one parent');
SELECT is(trim(current_setting('bjl.seen')), (SELECT id::text FROM ids WHERE name = 'B'),
    'a leaky function in a query on batch_jobs is shown bob''s parent only (row-level security)');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
