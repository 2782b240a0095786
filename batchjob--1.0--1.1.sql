/* batchjob--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION batchjob UPDATE TO '1.1'" to load this file. \quit

/*
 * Worker lifecycle: leases, attempts, delayed runs and a failure policy per
 * parent.  Every new column has a default, so existing rows need no rewrite
 * and a 1.0 table keeps every row.
 */
ALTER TABLE @extschema@.batch_jobs
    ADD COLUMN run_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ADD COLUMN locked_by text,
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 3,
    ADD COLUMN on_child_failure text NOT NULL DEFAULT 'continue',
    ADD CONSTRAINT batch_jobs_attempts_check CHECK (
        attempts OPERATOR(pg_catalog.>=) 0
        AND max_attempts OPERATOR(pg_catalog.>) 0),
    ADD CONSTRAINT batch_jobs_on_child_failure_check CHECK (
        on_child_failure OPERATOR(pg_catalog.=) ANY (
            ARRAY['continue', 'fail_fast']::pg_catalog.text[]));

COMMENT ON COLUMN @extschema@.batch_jobs.run_at IS
    'a PENDING job is not claimed before this time (retry backoff)';
COMMENT ON COLUMN @extschema@.batch_jobs.locked_by IS
    'the worker holding a PROCESSING job';
COMMENT ON COLUMN @extschema@.batch_jobs.locked_until IS
    'end of the worker''s lease; batchjob_reap() takes the job back after it';
COMMENT ON COLUMN @extschema@.batch_jobs.attempts IS
    'how many times the job was claimed';
COMMENT ON COLUMN @extschema@.batch_jobs.max_attempts IS
    'claims allowed before a failure or an expired lease is final';
COMMENT ON COLUMN @extschema@.batch_jobs.on_child_failure IS
    'on a parent: continue (partial success) or fail_fast (first final child failure fails the parent and cancels the rest)';

-- Jobs left PROCESSING by 1.0 get a lease, so batchjob_reap() can take them
-- back if their worker is gone (the row guard gives one to every job that
-- becomes PROCESSING from now on).  The guard is off for this statement so
-- that the rows keep their 1.0 updated_at; nothing else in them changes.
ALTER TABLE @extschema@.batch_jobs DISABLE TRIGGER batch_jobs_guard;
UPDATE @extschema@.batch_jobs
   SET locked_until = pg_catalog.now() OPERATOR(pg_catalog.+) '5 minutes'::pg_catalog.interval
 WHERE status OPERATOR(pg_catalog.=) 'PROCESSING' AND NOT is_parent;
ALTER TABLE @extschema@.batch_jobs ENABLE TRIGGER batch_jobs_guard;

-- what batchjob_reap() reads: only leased jobs are in it
CREATE INDEX batch_jobs_lease_idx ON @extschema@.batch_jobs (locked_until)
    WHERE status OPERATOR(pg_catalog.=) 'PROCESSING';

/*
 * batchjob_create_parent gains a failure policy and a parent (nesting).
 * Its old four-argument calls resolve to the new function unchanged.
 */
DROP FUNCTION @extschema@.batchjob_create_parent(jsonb, text, integer, bigint);

CREATE FUNCTION @extschema@.batchjob_create_parent(
    criteria jsonb,
    created_by text,
    priority integer DEFAULT 0,
    total_records bigint DEFAULT NULL,
    on_child_failure text DEFAULT 'continue',
    parent_job_id bigint DEFAULT NULL)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_create_parent'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_claim(
    worker text,
    max_jobs integer DEFAULT 1,
    lease interval DEFAULT '5 minutes')
RETURNS SETOF @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_claim'
LANGUAGE C VOLATILE ROWS 10
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_heartbeat(
    job_id bigint,
    worker text,
    lease interval DEFAULT '5 minutes')
RETURNS boolean
AS 'MODULE_PATHNAME', 'batchjob_heartbeat'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_progress(
    job_id bigint,
    processed bigint,
    succeeded bigint,
    failed bigint,
    worker text DEFAULT NULL)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_progress'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_complete(job_id bigint, worker text DEFAULT NULL)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_complete'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_fail(
    job_id bigint,
    error_details text,
    retry boolean DEFAULT true,
    worker text DEFAULT NULL)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_fail'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_complete(job_ids bigint[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'batchjob_complete_many'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_fail(
    job_ids bigint[],
    error_details text,
    retry boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'batchjob_fail_many'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_reap()
RETURNS bigint
AS 'MODULE_PATHNAME', 'batchjob_reap'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_retry(job_id bigint)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_retry'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.batchjob_cancel(job_id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'batchjob_cancel'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

/*
 * Tenant isolation (src/tenant.c).  With batchjob.tenant_isolation on, a
 * role that is not an admin sees and changes only the jobs of the tenants
 * it acts for: itself, and for a worker the tenants listed here (a worker
 * without a row here acts only for itself; one whose tenants is NULL serves
 * every tenant).
 */
CREATE TABLE @extschema@.batch_job_workers (
    worker  regrole PRIMARY KEY,
    tenants text[]
);

COMMENT ON TABLE @extschema@.batch_job_workers IS
    'the tenants each worker serves under batchjob.tenant_isolation (NULL: every tenant); kept by batchjob_grant';

COMMENT ON COLUMN @extschema@.batch_job_workers.worker IS
    'a role given worker access with batchjob_grant';
COMMENT ON COLUMN @extschema@.batch_job_workers.tenants IS
    'the created_by values whose jobs it serves; NULL for every tenant';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.batch_job_workers', '');
REVOKE ALL ON TABLE @extschema@.batch_job_workers FROM PUBLIC;

-- SECURITY DEFINER to read batch_job_workers; it judges the calling role
CREATE FUNCTION @extschema@.batchjob_tenant_visible(created_by text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'batchjob_tenant_visible'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.batchjob_tenant_visible(text) IS
    'whether the current role may see jobs of this tenant (the row-level security policy on batch_jobs)';

-- every role that can read batch_jobs evaluates the policy, so every role
-- may call it; it only tells a role about its own reach
GRANT EXECUTE ON FUNCTION @extschema@.batchjob_tenant_visible(text) TO PUBLIC;

ALTER TABLE @extschema@.batch_jobs ENABLE ROW LEVEL SECURITY;
-- the setting is tested first, so the policy costs next to nothing when off
CREATE POLICY batch_jobs_tenant ON @extschema@.batch_jobs
    USING (COALESCE(pg_catalog.current_setting('batchjob.tenant_isolation', true), 'off')
               OPERATOR(pg_catalog.=) 'off'
           OR @extschema@.batchjob_tenant_visible(created_by))
    WITH CHECK (COALESCE(pg_catalog.current_setting('batchjob.tenant_isolation', true), 'off')
                    OPERATOR(pg_catalog.=) 'off'
                OR @extschema@.batchjob_tenant_visible(created_by));

/*
 * One row per parent.  Rates are measured from started_at to completed_at,
 * or to now() while the parent runs; the estimate assumes that rate holds.
 */
CREATE VIEW @extschema@.batch_job_progress AS
SELECT j.job_id,
       j.parent_job_id,
       j.status,
       j.pending,
       j.processing,
       j.completed,
       j.failed,
       j.cancelled,
       j.pending OPERATOR(pg_catalog.+) j.processing
           OPERATOR(pg_catalog.+) j.completed
           OPERATOR(pg_catalog.+) j.failed
           OPERATOR(pg_catalog.+) j.cancelled AS children,
       j.processed_records,
       j.total_records,
       CASE WHEN j.total_records OPERATOR(pg_catalog.>) 0
            THEN pg_catalog.round(100::pg_catalog.numeric
                     OPERATOR(pg_catalog.*) j.processed_records::pg_catalog.numeric
                     OPERATOR(pg_catalog./) j.total_records::pg_catalog.numeric, 2)
       END AS percent_done,
       r.records_per_second,
       CASE WHEN j.status OPERATOR(pg_catalog.=) ANY (
                     ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[])
            THEN j.completed_at
            WHEN r.records_per_second OPERATOR(pg_catalog.>) 0
                 AND j.total_records IS NOT NULL
            THEN pg_catalog.now() OPERATOR(pg_catalog.+)
                 pg_catalog.make_interval(secs =>
                     ((j.total_records OPERATOR(pg_catalog.-) j.processed_records)::pg_catalog.numeric
                      OPERATOR(pg_catalog./) r.records_per_second)::double precision)
       END AS estimated_finish
  FROM (
      /* the stored figures plus differences not folded in yet */
      SELECT p.job_id, p.parent_job_id, p.status, p.started_at,
             p.completed_at,
             p.child_pending OPERATOR(pg_catalog.+) d.pending AS pending,
             p.child_processing OPERATOR(pg_catalog.+) d.processing AS processing,
             p.child_completed OPERATOR(pg_catalog.+) d.completed AS completed,
             p.child_failed OPERATOR(pg_catalog.+) d.failed AS failed,
             p.child_cancelled OPERATOR(pg_catalog.+) d.cancelled AS cancelled,
             /* the first children replace a parent's own figures, as in a fold */
             CASE WHEN d.n OPERATOR(pg_catalog.=) 0 THEN p.processed_records
                  WHEN p.child_pending OPERATOR(pg_catalog.+) p.child_processing
                       OPERATOR(pg_catalog.+) p.child_completed
                       OPERATOR(pg_catalog.+) p.child_failed
                       OPERATOR(pg_catalog.+) p.child_cancelled OPERATOR(pg_catalog.=) 0
                  THEN d.processed
                  ELSE p.processed_records OPERATOR(pg_catalog.+) d.processed
             END AS processed_records,
             CASE WHEN d.n OPERATOR(pg_catalog.=) 0 THEN p.total_records
                  WHEN p.child_pending OPERATOR(pg_catalog.+) p.child_processing
                       OPERATOR(pg_catalog.+) p.child_completed
                       OPERATOR(pg_catalog.+) p.child_failed
                       OPERATOR(pg_catalog.+) p.child_cancelled OPERATOR(pg_catalog.=) 0
                  THEN d.total
                  ELSE COALESCE(p.total_records, 0) OPERATOR(pg_catalog.+) d.total
             END AS total_records
        FROM @extschema@.batch_jobs p
        CROSS JOIN LATERAL (
            SELECT pg_catalog.count(*) AS n,
                   COALESCE(pg_catalog.sum(x.child_pending), 0)::pg_catalog.int8 AS pending,
                   COALESCE(pg_catalog.sum(x.child_processing), 0)::pg_catalog.int8 AS processing,
                   COALESCE(pg_catalog.sum(x.child_completed), 0)::pg_catalog.int8 AS completed,
                   COALESCE(pg_catalog.sum(x.child_failed), 0)::pg_catalog.int8 AS failed,
                   COALESCE(pg_catalog.sum(x.child_cancelled), 0)::pg_catalog.int8 AS cancelled,
                   COALESCE(pg_catalog.sum(x.total_records), 0)::pg_catalog.int8 AS total,
                   COALESCE(pg_catalog.sum(x.processed_records), 0)::pg_catalog.int8 AS processed
              FROM @extschema@.batch_job_deltas x
             WHERE x.parent_job_id OPERATOR(pg_catalog.=) p.job_id) d
       WHERE p.is_parent
         -- the view reads the table as its owner, whom row-level security
         -- passes over: apply the tenant policy here
         AND (COALESCE(pg_catalog.current_setting('batchjob.tenant_isolation', true), 'off')
                  OPERATOR(pg_catalog.=) 'off'
              OR @extschema@.batchjob_tenant_visible(p.created_by))) j
  CROSS JOIN LATERAL (
      SELECT CASE WHEN j.started_at IS NOT NULL
                       AND j.processed_records OPERATOR(pg_catalog.>) 0
                  THEN pg_catalog.round(j.processed_records::pg_catalog.numeric
                       OPERATOR(pg_catalog./) GREATEST(0.001::pg_catalog.numeric,
                           pg_catalog.date_part('epoch',
                               COALESCE(j.completed_at, pg_catalog.now())
                               OPERATOR(pg_catalog.-) j.started_at)::pg_catalog.numeric), 2)
             END AS records_per_second) r
;

COMMENT ON VIEW @extschema@.batch_job_progress IS
    'one row per parent: status, child counts, records done, rate and estimated finish';

/*
 * Checks every invariant the triggers maintain and returns one row per
 * violation; no row when all is well.  A parent's figures are compared with
 * its children's after adding the differences still waiting to be folded;
 * its status only once nothing waits for it.  O(table): a tool for tests,
 * audits and crash recovery, not for a hot path.
 */
CREATE FUNCTION @extschema@.batchjob_verify()
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
) x
ORDER BY x.job_id, x.problem;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_verify() IS
    'checks every invariant the triggers maintain; one row per violation, none when all is well';

COMMENT ON FUNCTION @extschema@.batchjob_create_parent(jsonb, text, integer, bigint, text, bigint) IS
    'creates a PENDING parent job, optionally under another parent, with a child failure policy';
COMMENT ON FUNCTION @extschema@.batchjob_claim(text, integer, interval) IS
    'atomically moves up to max_jobs claimable PENDING jobs to PROCESSING under a lease for worker';
COMMENT ON FUNCTION @extschema@.batchjob_heartbeat(bigint, text, interval) IS
    'extends the worker''s lease on a job; false when the job is no longer the worker''s';
COMMENT ON FUNCTION @extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text) IS
    'records a PROCESSING job''s absolute progress; with worker, only while that worker holds it';
COMMENT ON FUNCTION @extschema@.batchjob_complete(bigint, text) IS
    'marks a PROCESSING job COMPLETED; with worker, only while that worker holds it';
COMMENT ON FUNCTION @extschema@.batchjob_fail(bigint, text, boolean, text) IS
    'fails a PROCESSING job: back to PENDING with backoff while attempts remain and retry is true, else FAILED';
COMMENT ON FUNCTION @extschema@.batchjob_complete(bigint[]) IS
    'marks PROCESSING jobs COMPLETED in one statement; returns how many changed';
COMMENT ON FUNCTION @extschema@.batchjob_fail(bigint[], text, boolean) IS
    'fails PROCESSING jobs in one statement; returns how many changed';
COMMENT ON FUNCTION @extschema@.batchjob_reap() IS
    'takes back jobs whose lease expired: PENDING again, or FAILED when out of attempts; returns how many';
COMMENT ON FUNCTION @extschema@.batchjob_retry(bigint) IS
    'puts a FAILED job (or a parent''s FAILED descendants) back to PENDING';
COMMENT ON FUNCTION @extschema@.batchjob_cancel(bigint) IS
    'cancels an unfinished job, or every unfinished descendant of a parent; returns how many changed';

/*
 * Least privilege.  Workers and submitters read jobs with plain SELECT but
 * change them only through the functions, so those functions run as the
 * extension's owner (SECURITY DEFINER, search_path pinned, every statement
 * schema-qualified in C with parameters only).  So do the triggers, so that
 * the rollup can write parents and batch_job_deltas whoever changed a
 * child.  The operator hands out access with batchjob_grant().
 */
ALTER FUNCTION @extschema@.batchjob_rollup() SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_truncate() SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_create_child(bigint, integer, bigint, integer, jsonb, integer) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_split(bigint, bigint, integer) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_children(bigint) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_child_counts(bigint) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_next_pending() SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_create_parent(jsonb, text, integer, bigint, text, bigint) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_claim(text, integer, interval) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_heartbeat(bigint, text, interval) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_complete(bigint, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_fail(bigint, text, boolean, text) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_complete(bigint[]) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_fail(bigint[], text, boolean) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_retry(bigint) SECURITY DEFINER;
ALTER FUNCTION @extschema@.batchjob_cancel(bigint) SECURITY DEFINER;


/*
 * batchjob_grant(role, level, tenants): worker, submitter or admin access
 * for a role the operator created; for a worker, the tenants it serves
 * under tenant isolation (NULL: every tenant).  Objects are found through
 * the catalog and named with regprocedure and %I, never by pasting the
 * schema name into SQL.
 */
CREATE FUNCTION @extschema@.batchjob_grant(role regrole, level text,
                                           tenants text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp text;
    fn regprocedure;
    wanted text[];
BEGIN
    IF role IS NULL OR level IS NULL THEN
        RAISE EXCEPTION 'role and level must not be null' USING ERRCODE = '22004';
    END IF;
    wanted := CASE level
        WHEN 'worker' THEN ARRAY['batchjob_children', 'batchjob_child_counts',
            'batchjob_next_pending', 'batchjob_claim', 'batchjob_heartbeat',
            'batchjob_progress', 'batchjob_complete', 'batchjob_fail']
        WHEN 'submitter' THEN ARRAY['batchjob_children', 'batchjob_child_counts',
            'batchjob_next_pending', 'batchjob_create_parent',
            'batchjob_create_child', 'batchjob_split', 'batchjob_cancel',
            'batchjob_retry']
        WHEN 'admin' THEN NULL
        ELSE ARRAY[]::text[] END;
    IF wanted IS NOT NULL AND pg_catalog.cardinality(wanted) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'unknown access level "%"', level
            USING ERRCODE = '22023', HINT = 'Use worker, submitter or admin.';
    END IF;
    IF tenants IS NOT NULL AND level OPERATOR(pg_catalog.<>) 'worker' THEN
        RAISE EXCEPTION 'only a worker serves a list of tenants'
            USING ERRCODE = '22023';
    END IF;

    SELECT n.nspname INTO nsp
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob';

    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %s', nsp, role);
    EXECUTE pg_catalog.format('GRANT SELECT ON %I.batch_jobs, %I.batch_job_progress TO %s',
                              nsp, nsp, role);
    FOR fn IN
        SELECT p.oid::pg_catalog.regprocedure
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                   WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob')
           AND d.deptype OPERATOR(pg_catalog.=) 'e'
           AND p.prorettype OPERATOR(pg_catalog.<>) 'pg_catalog.trigger'::pg_catalog.regtype
           AND p.proname OPERATOR(pg_catalog.<>) 'batchjob_tenant_visible'
           AND (wanted IS NULL OR p.proname OPERATOR(pg_catalog.=) ANY (wanted))
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', fn, role);
    END LOOP;

    IF level OPERATOR(pg_catalog.=) 'worker' THEN
        EXECUTE pg_catalog.format(
            'INSERT INTO %I.batch_job_workers AS w (worker, tenants) VALUES ($1, $2)'
            ' ON CONFLICT (worker) DO UPDATE SET tenants = EXCLUDED.tenants', nsp)
            USING role, tenants;
    END IF;

    /*
     * Not ALL: TRIGGER (or REFERENCES) on these tables would let an admin
     * attach code that the SECURITY DEFINER functions then run as the
     * extension's owner.
     */
    IF level OPERATOR(pg_catalog.=) 'admin' THEN
        EXECUTE pg_catalog.format(
            'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLE %I.batch_jobs,'
            ' %I.batch_job_deltas, %I.batch_job_workers TO %s', nsp, nsp, nsp, role);
        EXECUTE pg_catalog.format('GRANT SELECT ON %I.batch_job_progress TO %s', nsp, role);
        EXECUTE pg_catalog.format('GRANT ALL ON SEQUENCE %I.batch_jobs_job_id_seq TO %s',
                                  nsp, role);
    END IF;
END;
$$;

/* batchjob_revoke(role): takes back whatever batchjob_grant gave the role. */
CREATE FUNCTION @extschema@.batchjob_revoke(role regrole)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp text;
    fn regprocedure;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT n.nspname INTO nsp
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob';

    FOR fn IN
        SELECT p.oid::pg_catalog.regprocedure
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                   WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob')
           AND d.deptype OPERATOR(pg_catalog.=) 'e'
           AND p.proname OPERATOR(pg_catalog.<>) 'batchjob_tenant_visible'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', fn, role);
    END LOOP;
    EXECUTE pg_catalog.format(
        'REVOKE ALL ON TABLE %I.batch_jobs, %I.batch_job_deltas, %I.batch_job_progress,'
        ' %I.batch_job_workers FROM %s', nsp, nsp, nsp, nsp, role);
    EXECUTE pg_catalog.format('DELETE FROM %I.batch_job_workers WHERE worker OPERATOR(pg_catalog.=) $1', nsp)
        USING role;
    EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE %I.batch_jobs_job_id_seq FROM %s',
                              nsp, role);
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_grant(regrole, text, text[]) IS
    'gives a role worker, submitter or admin access to batchjob; a worker may be given the tenants it serves';
COMMENT ON FUNCTION @extschema@.batchjob_revoke(regrole) IS
    'takes back every batchjob access a role was given';
REVOKE ALL ON FUNCTION @extschema@.batchjob_grant(regrole, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_revoke(regrole) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.batchjob_create_parent(jsonb, text, integer, bigint, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_claim(text, integer, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_heartbeat(bigint, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_progress(bigint, bigint, bigint, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_complete(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_fail(bigint, text, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_complete(bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_fail(bigint[], text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_reap() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_retry(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_cancel(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.batchjob_verify() FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.batch_job_progress FROM PUBLIC;
