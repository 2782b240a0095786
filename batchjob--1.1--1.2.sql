/* batchjob--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION batchjob UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.2: a folder nothing but a superuser can stop, claims that identify
 * their holder, restores without a manual step.  Each section below names
 * what it is for.
 */

/*
 * When each waiting difference was deferred: batchjob_verify() reports one
 * that waits longer than a fold may take.  Rows already waiting get the
 * time of the upgrade.
 */
ALTER TABLE @extschema@.batch_job_deltas
    ADD COLUMN deferred_at timestamptz NOT NULL DEFAULT pg_catalog.now();

COMMENT ON COLUMN @extschema@.batch_job_deltas.deferred_at IS
    'when the difference was deferred (the start of the statement that made it)';

/*
 * Checks every invariant the triggers maintain and returns one row per
 * violation; no row when all is well.  1.2 adds differences that have
 * waited longer than the folder's bound.
 */
CREATE OR REPLACE FUNCTION @extschema@.batchjob_verify()
RETURNS TABLE (job_id bigint, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH kids AS (
    SELECT c.parent_job_id AS id,
           count(*) FILTER (WHERE c.status OPERATOR(pg_catalog.=) 'PENDING') AS pending,
           count(*) FILTER (WHERE c.status OPERATOR(pg_catalog.=) 'PROCESSING') AS processing,
           count(*) FILTER (WHERE c.status OPERATOR(pg_catalog.=) 'COMPLETED') AS completed,
           count(*) FILTER (WHERE c.status OPERATOR(pg_catalog.=) 'FAILED') AS failed,
           count(*) FILTER (WHERE c.status OPERATOR(pg_catalog.=) 'CANCELLED') AS cancelled,
           COALESCE(sum(c.total_records), 0) AS total,
           COALESCE(sum(c.processed_records), 0) AS processed,
           COALESCE(sum(c.success_count), 0) AS success,
           COALESCE(sum(c.error_count), 0) AS errors
      FROM @extschema@.batch_jobs c
     WHERE c.parent_job_id IS NOT NULL
     GROUP BY c.parent_job_id),
waiting AS (
    SELECT d.parent_job_id AS id, count(*) AS n,
           sum(d.child_pending) AS pending, sum(d.child_processing) AS processing,
           sum(d.child_completed) AS completed, sum(d.child_failed) AS failed,
           sum(d.child_cancelled) AS cancelled, sum(d.total_records) AS total,
           sum(d.processed_records) AS processed, sum(d.success_count) AS success,
           sum(d.error_count) AS errors
      FROM @extschema@.batch_job_deltas d
     GROUP BY d.parent_job_id),
parents AS (
    SELECT p.job_id, p.status, p.child_pending, p.child_processing,
           p.child_completed, p.child_failed, p.child_cancelled,
           p.total_records, p.processed_records, p.success_count,
           p.error_count,
           COALESCE(k.pending, 0) AS k_pending, COALESCE(k.processing, 0) AS k_processing,
           COALESCE(k.completed, 0) AS k_completed, COALESCE(k.failed, 0) AS k_failed,
           COALESCE(k.cancelled, 0) AS k_cancelled, k.total AS k_total,
           k.processed AS k_processed, k.success AS k_success, k.errors AS k_errors,
           COALESCE(w.n, 0) AS w_n,
           COALESCE(w.pending, 0) AS w_pending, COALESCE(w.processing, 0) AS w_processing,
           COALESCE(w.completed, 0) AS w_completed, COALESCE(w.failed, 0) AS w_failed,
           COALESCE(w.cancelled, 0) AS w_cancelled, COALESCE(w.total, 0) AS w_total,
           COALESCE(w.processed, 0) AS w_processed, COALESCE(w.success, 0) AS w_success,
           COALESCE(w.errors, 0) AS w_errors,
           p.child_pending OPERATOR(pg_catalog.+) p.child_processing
             OPERATOR(pg_catalog.+) p.child_completed OPERATOR(pg_catalog.+) p.child_failed
             OPERATOR(pg_catalog.+) p.child_cancelled AS stored_children
      FROM @extschema@.batch_jobs p
      LEFT JOIN kids k ON k.id OPERATOR(pg_catalog.=) p.job_id
      LEFT JOIN waiting w ON w.id OPERATOR(pg_catalog.=) p.job_id
     WHERE p.is_parent)
SELECT x.job_id, x.problem FROM (
    SELECT job_id, pg_catalog.format(
               'child counts %s/%s/%s/%s/%s (pending/processing/completed/failed/cancelled, with %s waiting differences) but its children are %s/%s/%s/%s/%s',
               child_pending OPERATOR(pg_catalog.+) w_pending,
               child_processing OPERATOR(pg_catalog.+) w_processing,
               child_completed OPERATOR(pg_catalog.+) w_completed,
               child_failed OPERATOR(pg_catalog.+) w_failed,
               child_cancelled OPERATOR(pg_catalog.+) w_cancelled, w_n,
               k_pending, k_processing, k_completed, k_failed, k_cancelled) AS problem
      FROM parents
     WHERE (child_pending OPERATOR(pg_catalog.+) w_pending, child_processing OPERATOR(pg_catalog.+) w_processing,
            child_completed OPERATOR(pg_catalog.+) w_completed, child_failed OPERATOR(pg_catalog.+) w_failed,
            child_cancelled OPERATOR(pg_catalog.+) w_cancelled)
           IS DISTINCT FROM (k_pending, k_processing, k_completed, k_failed, k_cancelled)
    UNION ALL
    SELECT job_id, pg_catalog.format(
               'figures %s/%s/%s/%s (total/processed/success/errors, with waiting differences) but its children sum to %s/%s/%s/%s',
               CASE WHEN stored_children OPERATOR(pg_catalog.=) 0 THEN w_total
                    ELSE COALESCE(total_records, 0) OPERATOR(pg_catalog.+) w_total END,
               CASE WHEN stored_children OPERATOR(pg_catalog.=) 0 THEN w_processed
                    ELSE processed_records OPERATOR(pg_catalog.+) w_processed END,
               CASE WHEN stored_children OPERATOR(pg_catalog.=) 0 THEN w_success
                    ELSE success_count OPERATOR(pg_catalog.+) w_success END,
               CASE WHEN stored_children OPERATOR(pg_catalog.=) 0 THEN w_errors
                    ELSE error_count OPERATOR(pg_catalog.+) w_errors END,
               k_total, k_processed, k_success, k_errors)
      FROM parents
     WHERE k_total IS NOT NULL
       AND (CASE WHEN stored_children OPERATOR(pg_catalog.=) 0 THEN w_total
                 ELSE COALESCE(total_records, 0) OPERATOR(pg_catalog.+) w_total END,
            CASE WHEN stored_children OPERATOR(pg_catalog.=) 0 THEN w_processed
                 ELSE processed_records OPERATOR(pg_catalog.+) w_processed END,
            CASE WHEN stored_children OPERATOR(pg_catalog.=) 0 THEN w_success
                 ELSE success_count OPERATOR(pg_catalog.+) w_success END,
            CASE WHEN stored_children OPERATOR(pg_catalog.=) 0 THEN w_errors
                 ELSE error_count OPERATOR(pg_catalog.+) w_errors END)
           IS DISTINCT FROM (k_total, k_processed, k_success, k_errors)
    UNION ALL
    SELECT job_id, pg_catalog.format('status %s while %s of its children are unfinished',
                                     status, k_pending OPERATOR(pg_catalog.+) k_processing)
      FROM parents
     WHERE w_n OPERATOR(pg_catalog.=) 0
       AND status OPERATOR(pg_catalog.=) ANY (ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[])
       AND k_pending OPERATOR(pg_catalog.+) k_processing OPERATOR(pg_catalog.>) 0
    UNION ALL
    SELECT job_id, pg_catalog.format('status %s while all %s of its children are finished',
                                     status, k_completed OPERATOR(pg_catalog.+) k_failed
                                       OPERATOR(pg_catalog.+) k_cancelled)
      FROM parents
     WHERE w_n OPERATOR(pg_catalog.=) 0
       AND status OPERATOR(pg_catalog.=) ANY (ARRAY['PENDING', 'PROCESSING']::pg_catalog.text[])
       AND k_total IS NOT NULL
       AND k_pending OPERATOR(pg_catalog.+) k_processing OPERATOR(pg_catalog.=) 0
    UNION ALL
    SELECT j.job_id, 'PROCESSING without a lease'
      FROM @extschema@.batch_jobs j
     WHERE j.status OPERATOR(pg_catalog.=) 'PROCESSING' AND NOT j.is_parent
       AND j.locked_until IS NULL
    UNION ALL
    SELECT j.job_id, 'has children but is not a parent'
      FROM @extschema@.batch_jobs j
     WHERE NOT j.is_parent
       AND EXISTS (SELECT FROM @extschema@.batch_jobs c
                    WHERE c.parent_job_id OPERATOR(pg_catalog.=) j.job_id)
    UNION ALL
    SELECT w.id, 'waiting differences for a job that does not exist'
      FROM waiting w
     WHERE NOT EXISTS (SELECT FROM @extschema@.batch_jobs j
                        WHERE j.job_id OPERATOR(pg_catalog.=) w.id)
    UNION ALL
    -- FOLD_BOUND_SECS in src/fold.c: a committed difference is folded long
    -- before this unless something stops its fold
    SELECT d.parent_job_id, pg_catalog.format(
               '%s differences waiting since %s, longer than the %s seconds a fold may take',
               pg_catalog.count(*), pg_catalog.min(d.deferred_at), 60)
      FROM @extschema@.batch_job_deltas d
     WHERE d.deferred_at OPERATOR(pg_catalog.<)
           (pg_catalog.now() OPERATOR(pg_catalog.-) '60 seconds'::pg_catalog.interval)
     GROUP BY d.parent_job_id
) x
ORDER BY x.job_id, x.problem;
$$;

/* For tests of the hand-off: hold the busy lock a busy folder holds. */
CREATE FUNCTION @extschema@.batchjob_hold_folder_busy(hold boolean)
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'batchjob_hold_folder_busy';

COMMENT ON FUNCTION @extschema@.batchjob_hold_folder_busy(boolean) IS
    'superuser only, for tests: the session holds (true) or lets go of (false) the folder''s busy lock, so rollups in other sessions defer to the folder';

REVOKE ALL ON FUNCTION @extschema@.batchjob_hold_folder_busy(boolean) FROM PUBLIC;

/*
 * The progress view reads batch_jobs as its owner, whom row-level security
 * passes over, and applies the tenant filter itself; as a security barrier
 * that filter runs before any function of the caller's query, so a cheap
 * "leaky" function in a WHERE clause cannot see other tenants' rows.
 * Leakproof operators (job_id = $1) still reach the index.
 */
ALTER VIEW @extschema@.batch_job_progress SET (security_barrier = true);

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

/*
 * The acting role is the current user at the call (src/tenant.c).  As
 * SECURITY DEFINER, these functions could judge only the outer user, so a
 * tenant's own SECURITY DEFINER function run by an admin, or a tenant's
 * index expression run by a superuser's ANALYZE, acted for every tenant.
 * Now each runs as its caller, notes that role, and switches itself to the
 * extension's owner for its work (restored at return, and on error by the
 * abort).  EXECUTE is still what lets a role call them (batchjob_grant).
 * The triggers stay SECURITY DEFINER (they judge no tenant), and so do
 * batchjob_grant and batchjob_revoke, which grant as the owner.
 */
ALTER FUNCTION @extschema@.batchjob_create_parent(jsonb, text, integer, bigint, text, bigint) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_create_child(bigint, integer, bigint, integer, jsonb, integer) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_split(bigint, bigint, integer) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_children(bigint) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_child_counts(bigint) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_next_pending() SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_claim(text, integer, interval) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_heartbeat(bigint, text, interval, integer) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text, integer) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_complete(bigint, text, integer) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_fail(bigint, text, boolean, text, integer) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_complete(bigint[], text) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_fail(bigint[], text, boolean, text) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_retry(bigint) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_cancel(bigint) SECURITY INVOKER;
ALTER FUNCTION @extschema@.batchjob_tenant_visible(text) SECURITY INVOKER;
