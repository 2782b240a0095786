/* batchjob--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION batchjob UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.2: a folder nothing but a superuser can stop, claims that identify
 * their holder, restores without a manual step.  Each section below names
 * what it is for.
 */

/*
 * Claims that identify their holder.  A worker whose lease expired, and
 * whose job was reaped and claimed again (by another worker, or by itself
 * after a restart), could still heartbeat, report, complete or fail the new
 * attempt.  The claim token is the attempts value batchjob_claim returns
 * with each job: every claim increments it.  The one-job worker functions
 * take it as an optional trailing attempt argument, and the array forms of
 * complete and fail an optional worker; a role that is not an admin must
 * name its worker (src/lifecycle.c).
 *
 * A defaulted argument changes the signature, and the old and new forms
 * would make every short call ambiguous, so each function is created anew
 * and the old one dropped.  Calls written for 1.1 (positional or named)
 * resolve to the new functions unchanged.  Whoever could execute an old
 * function may execute its new form: the grants are copied before the old
 * ones go.
 */
CREATE FUNCTION @extschema@.batchjob_heartbeat(
    job_id bigint,
    worker text,
    lease interval DEFAULT '5 minutes',
    attempt integer DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'batchjob_heartbeat'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_progress(
    job_id bigint,
    processed bigint,
    succeeded bigint,
    failed bigint,
    worker text DEFAULT NULL,
    attempt integer DEFAULT NULL)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_progress'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_complete(
    job_id bigint,
    worker text DEFAULT NULL,
    attempt integer DEFAULT NULL)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_complete'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_fail(
    job_id bigint,
    error_details text,
    retry boolean DEFAULT true,
    worker text DEFAULT NULL,
    attempt integer DEFAULT NULL)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_fail'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_complete(
    job_ids bigint[],
    worker text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'batchjob_complete_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_fail(
    job_ids bigint[],
    error_details text,
    retry boolean DEFAULT true,
    worker text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'batchjob_fail_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.batchjob_heartbeat(bigint, text, interval, integer) IS
    'extends the worker''s lease on a job; false when the job is no longer the worker''s (or, with attempt, in another attempt)';
COMMENT ON FUNCTION @extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text, integer) IS
    'records a PROCESSING job''s absolute progress; with worker (and attempt), only while that claim holds it';
COMMENT ON FUNCTION @extschema@.batchjob_complete(bigint, text, integer) IS
    'marks a PROCESSING job COMPLETED; with worker (and attempt), only while that claim holds it';
COMMENT ON FUNCTION @extschema@.batchjob_fail(bigint, text, boolean, text, integer) IS
    'fails a PROCESSING job: back to PENDING with backoff while attempts remain and retry is true, else FAILED; with worker (and attempt), only while that claim holds it';
COMMENT ON FUNCTION @extschema@.batchjob_complete(bigint[], text) IS
    'marks PROCESSING jobs COMPLETED in one statement, with worker only jobs it holds; returns how many changed';
COMMENT ON FUNCTION @extschema@.batchjob_fail(bigint[], text, boolean, text) IS
    'fails PROCESSING jobs in one statement, with worker only jobs it holds; returns how many changed';

REVOKE ALL ON FUNCTION @extschema@.batchjob_heartbeat(bigint, text, interval, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_complete(bigint, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_fail(bigint, text, boolean, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_complete(bigint[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_fail(bigint[], text, boolean, text) FROM PUBLIC;

-- the roles batchjob_grant gave the old forms get the new ones
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s', f.new_fn,
                   CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                        ELSE a.grantee::pg_catalog.regrole::pg_catalog.text END,
                   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS stmt
          FROM (VALUES
                ('@extschema@.batchjob_heartbeat(bigint, text, interval)',
                 '@extschema@.batchjob_heartbeat(bigint, text, interval, integer)'),
                ('@extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text)',
                 '@extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text, integer)'),
                ('@extschema@.batchjob_complete(bigint, text)',
                 '@extschema@.batchjob_complete(bigint, text, integer)'),
                ('@extschema@.batchjob_fail(bigint, text, boolean, text)',
                 '@extschema@.batchjob_fail(bigint, text, boolean, text, integer)'),
                ('@extschema@.batchjob_complete(bigint[])',
                 '@extschema@.batchjob_complete(bigint[], text)'),
                ('@extschema@.batchjob_fail(bigint[], text, boolean)',
                 '@extschema@.batchjob_fail(bigint[], text, boolean, text)')) AS f(old_fn, new_fn)
          JOIN pg_catalog.pg_proc p
            ON p.oid OPERATOR(pg_catalog.=) f.old_fn::pg_catalog.regprocedure
         CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
    LOOP
        EXECUTE g.stmt;
    END LOOP;
END
$$;

DROP FUNCTION @extschema@.batchjob_heartbeat(bigint, text, interval);
DROP FUNCTION @extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text);
DROP FUNCTION @extschema@.batchjob_complete(bigint, text);
DROP FUNCTION @extschema@.batchjob_fail(bigint, text, boolean, text);
DROP FUNCTION @extschema@.batchjob_complete(bigint[]);
DROP FUNCTION @extschema@.batchjob_fail(bigint[], text, boolean);
