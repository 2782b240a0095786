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

/* For tests of the hand-off: hold the busy lock a busy folder holds. */
CREATE FUNCTION @extschema@.batchjob_hold_folder_busy(hold boolean)
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'batchjob_hold_folder_busy';

COMMENT ON FUNCTION @extschema@.batchjob_hold_folder_busy(boolean) IS
    'superuser only, for tests: the session holds (true) or lets go of (false) the folder''s busy lock, so rollups in other sessions defer to the folder';

REVOKE ALL ON FUNCTION @extschema@.batchjob_hold_folder_busy(boolean) FROM PUBLIC;

/*
 * Each rule in one place.  C and SQL must agree on two rules; each is
 * written once here, and every reader in SQL and in the library reads it
 * from here.
 *
 * batchjob_child_total: how many children a parent's five counters count
 * (a parent whose count is 0 has no children yet, and keeps figures of its
 * own).  Its C twins sit side by side in src/batchjob.h and src/status.c:
 * child_counts_total for the counters the row trigger holds in C (it
 * derives a status per row, where calling SQL would cost a statement), and
 * JOB_CHILDREN_SQL for the library's statements, which must also run on
 * the 1.0 and 1.1 schemas, where this function does not exist.
 *
 * It is LANGUAGE sql, IMMUTABLE, one SELECT, not SECURITY DEFINER and
 * without a SET clause, so that the planner inlines it: the view below and
 * batch_job_progress cost what they cost with the sum written out.  Its
 * body names only its arguments and pg_catalog's + on bigint, so no
 * search_path can change what it does.  Every role that reads
 * batch_job_progress evaluates it (the caller of a view needs EXECUTE on
 * the functions the view calls, also to have them inlined), and it tells
 * nothing but the sum of its arguments, so PUBLIC may execute it, as
 * batchjob_tenant_visible.
 */
CREATE FUNCTION @extschema@.batchjob_child_total(pending bigint,
                                                 processing bigint,
                                                 completed bigint,
                                                 failed bigint,
                                                 cancelled bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT $1 OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.+) $3
          OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.+) $5
$$;

COMMENT ON FUNCTION @extschema@.batchjob_child_total(bigint, bigint, bigint, bigint, bigint) IS
    'how many children a parent''s five child counters (pending, processing, completed, failed, cancelled) count';

GRANT EXECUTE ON FUNCTION @extschema@.batchjob_child_total(bigint, bigint, bigint, bigint, bigint) TO PUBLIC;

/*
 * batchjob_row_check: the rules of a batch_jobs row, one CHECK constraint
 * in place of the eight of 1.0 and 1.1.  PostgreSQL rebuilds a table's
 * CHECK expressions from their stored node trees for every statement that
 * writes the table (ExecRelCheck reads each one with stringToNode and
 * plans it), and for those eight that cost about 40 µs a statement, more
 * than the rest of a one-row UPDATE by key (measured: 57 against 15 µs a
 * statement in a PL/pgSQL loop); every child change writes the table
 * twice, the child and its parent.  One call of the nineteen columns the
 * rules read costs a fraction of it.  The rules, the SQLSTATE (23514), the
 * message and the constraint named in it are those of the eight
 * constraints (checked in the order PostgreSQL checked them, by name, and
 * a NULL passes each as in SQL); the DETAIL names the broken rule instead
 * of printing the whole row.
 *
 * Not STRICT: NULLs pass.  IMMUTABLE: it reads nothing but its arguments.
 * Every role that writes batch_jobs evaluates it (the executor checks
 * EXECUTE on the functions of a CHECK expression), admins and members of
 * pg_write_all_data included, and it tells nothing, so PUBLIC may execute
 * it, as batchjob_child_total.
 */
CREATE FUNCTION @extschema@.batchjob_row_check(
    status text, on_child_failure text, is_parent boolean,
    job_id bigint, parent_job_id bigint,
    total_records bigint, processed_records bigint,
    success_count bigint, error_count bigint,
    child_pending bigint, child_processing bigint, child_completed bigint,
    child_failed bigint, child_cancelled bigint,
    batch_number integer, batch_offset bigint, batch_size integer,
    attempts integer, max_attempts integer)
RETURNS boolean
AS 'MODULE_PATHNAME', 'batchjob_row_check'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.batchjob_row_check(text, text, boolean, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, integer, bigint, integer, integer, integer) IS
    'CHECK constraint of batch_jobs: true, or raises 23514 naming the broken rule';

GRANT EXECUTE ON FUNCTION @extschema@.batchjob_row_check(text, text, boolean, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, integer, bigint, integer, integer, integer) TO PUBLIC;

ALTER TABLE @extschema@.batch_jobs
    DROP CONSTRAINT batch_jobs_attempts_check,
    DROP CONSTRAINT batch_jobs_batch_check,
    DROP CONSTRAINT batch_jobs_child_counters_check,
    DROP CONSTRAINT batch_jobs_counters_check,
    DROP CONSTRAINT batch_jobs_not_own_parent_check,
    DROP CONSTRAINT batch_jobs_on_child_failure_check,
    DROP CONSTRAINT batch_jobs_processed_check,
    DROP CONSTRAINT batch_jobs_status_check,
    ADD CONSTRAINT batch_jobs_row_check CHECK (@extschema@.batchjob_row_check(
        status, on_child_failure, is_parent, job_id, parent_job_id,
        total_records, processed_records, success_count, error_count,
        child_pending, child_processing, child_completed, child_failed,
        child_cancelled, batch_number, batch_offset, batch_size,
        attempts, max_attempts));

/*
 * The parents, by id.  batch_job_figures, and through it
 * batch_job_progress, batchjob_verify() and the dashboard's parent list,
 * read every parent; without an index that holds only parents that was a
 * scan of the whole table (325 ms at a million jobs, for a list of 100
 * parents).  Children are not in it, and a parent's own updates change
 * neither column, so they stay HOT.
 */
CREATE INDEX batch_jobs_parents_idx ON @extschema@.batch_jobs (job_id)
    WHERE is_parent;

/*
 * batch_job_figures: every parent with its effective figures, the stored
 * ones plus the differences waiting for it in batch_job_deltas, exact at
 * every moment.  The one place that computes them: batch_job_progress,
 * batchjob_verify() and batchjob_child_counts (src/fold.c) read them here.
 * A parent without children keeps figures of its own (a total given at
 * creation); the differences of its first children replace them rather
 * than add to them, as the fold that will store them does (ADD_FIGURES in
 * src/fold.c, the writer of the same rule).
 *
 * A view, not a function: a SQL function, inlined or not, reads its tables
 * with the privileges of the calling role, and workers and submitters may
 * not read batch_job_deltas; a view reads them as its owner.  It is as
 * cheap as the SQL it holds: a lookup by job_id stays an index scan of
 * the jobs' primary key, and the differences are one probe of
 * batch_job_deltas_parent_idx, usually finding nothing.  It shows every
 * tenant's parents, so only admins may read it; batch_job_progress applies
 * the tenant test on top of it.
 *
 * The four record figures are numeric: a parent whose waiting differences
 * add up beyond bigint (which its fold refuses, leaving them to wait) must
 * still be shown, so that batchjob_verify() can report it.  The child
 * counts count rows, and are bigint; batch_job_progress gives its figures
 * as bigint, as before.
 */
CREATE VIEW @extschema@.batch_job_figures AS
SELECT p.job_id,
       p.parent_job_id,
       p.status,
       p.created_by,
       p.started_at,
       p.completed_at,
       d.n AS waiting,
       p.child_pending OPERATOR(pg_catalog.+) d.pending AS pending,
       p.child_processing OPERATOR(pg_catalog.+) d.processing AS processing,
       p.child_completed OPERATOR(pg_catalog.+) d.completed AS completed,
       p.child_failed OPERATOR(pg_catalog.+) d.failed AS failed,
       p.child_cancelled OPERATOR(pg_catalog.+) d.cancelled AS cancelled,
       @extschema@.batchjob_child_total(
           p.child_pending OPERATOR(pg_catalog.+) d.pending,
           p.child_processing OPERATOR(pg_catalog.+) d.processing,
           p.child_completed OPERATOR(pg_catalog.+) d.completed,
           p.child_failed OPERATOR(pg_catalog.+) d.failed,
           p.child_cancelled OPERATOR(pg_catalog.+) d.cancelled) AS children,
       CASE WHEN d.n OPERATOR(pg_catalog.=) 0 THEN p.total_records
            WHEN s.no_children_yet THEN d.total
            ELSE COALESCE(p.total_records, 0) OPERATOR(pg_catalog.+) d.total
       END AS total_records,
       CASE WHEN d.n OPERATOR(pg_catalog.=) 0 THEN p.processed_records
            WHEN s.no_children_yet THEN d.processed
            ELSE p.processed_records OPERATOR(pg_catalog.+) d.processed
       END AS processed_records,
       CASE WHEN d.n OPERATOR(pg_catalog.=) 0 THEN p.success_count
            WHEN s.no_children_yet THEN d.success
            ELSE p.success_count OPERATOR(pg_catalog.+) d.success
       END AS success_count,
       CASE WHEN d.n OPERATOR(pg_catalog.=) 0 THEN p.error_count
            WHEN s.no_children_yet THEN d.errors
            ELSE p.error_count OPERATOR(pg_catalog.+) d.errors
       END AS error_count
  FROM @extschema@.batch_jobs p
 CROSS JOIN LATERAL (
       SELECT pg_catalog.count(*) AS n,
              COALESCE(pg_catalog.sum(x.child_pending), 0)::pg_catalog.int8 AS pending,
              COALESCE(pg_catalog.sum(x.child_processing), 0)::pg_catalog.int8 AS processing,
              COALESCE(pg_catalog.sum(x.child_completed), 0)::pg_catalog.int8 AS completed,
              COALESCE(pg_catalog.sum(x.child_failed), 0)::pg_catalog.int8 AS failed,
              COALESCE(pg_catalog.sum(x.child_cancelled), 0)::pg_catalog.int8 AS cancelled,
              -- numeric (sum's own type), see above
              COALESCE(pg_catalog.sum(x.total_records), 0) AS total,
              COALESCE(pg_catalog.sum(x.processed_records), 0) AS processed,
              COALESCE(pg_catalog.sum(x.success_count), 0) AS success,
              COALESCE(pg_catalog.sum(x.error_count), 0) AS errors
         FROM @extschema@.batch_job_deltas x
        WHERE x.parent_job_id OPERATOR(pg_catalog.=) p.job_id) d
 CROSS JOIN LATERAL (
       SELECT @extschema@.batchjob_child_total(p.child_pending, p.child_processing,
                                               p.child_completed, p.child_failed,
                                               p.child_cancelled)
              OPERATOR(pg_catalog.=) 0 AS no_children_yet) s
 WHERE p.is_parent;

COMMENT ON VIEW @extschema@.batch_job_figures IS
    'every parent''s effective figures: the stored ones plus the differences waiting in batch_job_deltas (what batch_job_progress, batchjob_child_counts and batchjob_verify read); admins only';

COMMENT ON COLUMN @extschema@.batch_job_figures.waiting IS
    'how many differences wait in batch_job_deltas for the parent (0: the stored row is final)';
COMMENT ON COLUMN @extschema@.batch_job_figures.pending IS 'children in status PENDING';
COMMENT ON COLUMN @extschema@.batch_job_figures.processing IS 'children in status PROCESSING';
COMMENT ON COLUMN @extschema@.batch_job_figures.completed IS 'children in status COMPLETED';
COMMENT ON COLUMN @extschema@.batch_job_figures.failed IS 'children in status FAILED';
COMMENT ON COLUMN @extschema@.batch_job_figures.cancelled IS 'children in status CANCELLED';
COMMENT ON COLUMN @extschema@.batch_job_figures.children IS
    'all children: batchjob_child_total of the five counts';
COMMENT ON COLUMN @extschema@.batch_job_figures.total_records IS
    'the sum over the children once it has any, else its own total (numeric: beyond bigint when a fold would overflow)';
COMMENT ON COLUMN @extschema@.batch_job_figures.processed_records IS
    'the sum over the children once it has any, else its own (numeric)';
COMMENT ON COLUMN @extschema@.batch_job_figures.success_count IS
    'the sum over the children once it has any, else its own (numeric)';
COMMENT ON COLUMN @extschema@.batch_job_figures.error_count IS
    'the sum over the children once it has any, else its own (numeric)';

REVOKE ALL ON TABLE @extschema@.batch_job_figures FROM PUBLIC;

/*
 * The progress view reads the figures above as its owner, whom row-level
 * security passes over, and applies the tenant filter itself; as a
 * security barrier that filter runs before any function of the caller's
 * query, so a cheap "leaky" function in a WHERE clause cannot see other
 * tenants' rows.  Leakproof operators (job_id = $1) still reach the index.
 * Its columns are 1.1's, in 1.1's order.
 */
CREATE OR REPLACE VIEW @extschema@.batch_job_progress WITH (security_barrier = true) AS
SELECT j.job_id,
       j.parent_job_id,
       j.status,
       j.pending,
       j.processing,
       j.completed,
       j.failed,
       j.cancelled,
       j.children,
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
  FROM (SELECT f.job_id, f.parent_job_id, f.status, f.created_by, f.started_at,
               f.completed_at, f.pending, f.processing, f.completed, f.failed,
               f.cancelled, f.children,
               f.processed_records::pg_catalog.int8 AS processed_records,
               f.total_records::pg_catalog.int8 AS total_records
          FROM @extschema@.batch_job_figures f) j
 CROSS JOIN LATERAL (
      SELECT CASE WHEN j.started_at IS NOT NULL
                       AND j.processed_records OPERATOR(pg_catalog.>) 0
                  THEN pg_catalog.round(j.processed_records::pg_catalog.numeric
                       OPERATOR(pg_catalog./) GREATEST(0.001::pg_catalog.numeric,
                           pg_catalog.date_part('epoch',
                               COALESCE(j.completed_at, pg_catalog.now())
                               OPERATOR(pg_catalog.-) j.started_at)::pg_catalog.numeric), 2)
             END AS records_per_second) r
 -- the tenant policy of batch_jobs, which the owner's read passes over
 WHERE COALESCE(pg_catalog.current_setting('batchjob.tenant_isolation', true), 'off')
           OPERATOR(pg_catalog.=) 'off'
       OR @extschema@.batchjob_tenant_visible(j.created_by);

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

/*
 * A worker's whole turn in one call (issue 16): complete the jobs it has
 * done, then claim the next ones, in one round trip and one commit instead
 * of two.  The rules, errors and privileges are those of
 * batchjob_complete(done, worker) followed by batchjob_claim(worker,
 * max_jobs, lease); SECURITY INVOKER like them (src/tenant.c switches to
 * the owner).  batchjob_grant gives it to workers.
 */
CREATE FUNCTION @extschema@.batchjob_complete_and_claim(
    done bigint[],
    worker text,
    max_jobs integer DEFAULT 1,
    lease interval DEFAULT '5 minutes')
RETURNS SETOF @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_complete_and_claim'
LANGUAGE C VOLATILE ROWS 10
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.batchjob_complete_and_claim(bigint[], text, integer, interval) IS
    'completes the PROCESSING jobs of done that worker holds (all or nothing, as batchjob_complete(done, worker)), then claims up to max_jobs jobs for worker as batchjob_claim does, in one call; returns the claimed jobs';
REVOKE ALL ON FUNCTION @extschema@.batchjob_complete_and_claim(bigint[], text, integer, interval) FROM PUBLIC;

/*
 * Tenant isolation without leaks: bounds and grants.
 *
 * The two trigger functions that run for every write carry no SET clause:
 * a SET clause saves and restores the settings at every call, a few
 * percent of a one-row UPDATE.  The row guard runs no SQL and looks no
 * name up; the rollup pins search_path in C for the statements it runs
 * (src/spi_plans.c, job_pin_search_path), and the usual change, a
 * difference left to the folder, runs none.
 */
ALTER FUNCTION @extschema@.batchjob_rollup() RESET search_path;

/*
 * Priority orders the queue that shared workers serve, so a submitter may
 * give its jobs at most the ceiling an admin gave it (src/limits.c); 0, the
 * default priority, when none was given.  Admins and superusers are not
 * limited.  Not in batch_job_workers: a row there with no tenant list means
 * "serves every tenant".
 */
CREATE TABLE @extschema@.batch_job_submitters (
    submitter    regrole PRIMARY KEY,
    max_priority integer NOT NULL,
    CONSTRAINT batch_job_submitters_max_priority_check
        CHECK (max_priority OPERATOR(pg_catalog.>=) 0)
);

COMMENT ON TABLE @extschema@.batch_job_submitters IS
    'the highest priority each submitter may give its jobs; kept by batchjob_grant';
COMMENT ON COLUMN @extschema@.batch_job_submitters.submitter IS
    'a role given submitter access with batchjob_grant';
COMMENT ON COLUMN @extschema@.batch_job_submitters.max_priority IS
    'the highest priority it may set in batchjob_create_parent and batchjob_create_child';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.batch_job_submitters', '');
REVOKE ALL ON TABLE @extschema@.batch_job_submitters FROM PUBLIC;

/*
 * batchjob_grant(role, level, tenants, max_priority): as in 1.1, plus a
 * submitter's priority ceiling (kept when not given, 0 for a new
 * submitter), and a tenant list may not hold NULL.  A new argument with a
 * default makes every call to the old form ambiguous, so the old form is
 * dropped; its EXECUTE grants are not copied, since only admins should
 * hold them, and the end of this script gives them back to every admin.
 * It also hands out what the follow-up section below adds:
 * batchjob_create_followup to submitters, batch_job_followups and
 * batch_jobs_archive to admins (created further down; the body names them
 * only when it runs), and batch_job_figures (above) to admins, whose
 * batchjob_verify() reads it.
 */
DROP FUNCTION @extschema@.batchjob_grant(regrole, text, text[]);

CREATE FUNCTION @extschema@.batchjob_grant(role regrole, level text,
                                           tenants text[] DEFAULT NULL,
                                           max_priority integer DEFAULT NULL)
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
            'batchjob_progress', 'batchjob_complete', 'batchjob_fail',
            'batchjob_complete_and_claim']
        WHEN 'submitter' THEN ARRAY['batchjob_children', 'batchjob_child_counts',
            'batchjob_next_pending', 'batchjob_create_parent',
            'batchjob_create_child', 'batchjob_split', 'batchjob_cancel',
            'batchjob_retry', 'batchjob_create_followup']
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
    IF pg_catalog.array_position(tenants, NULL::text) IS NOT NULL THEN
        RAISE EXCEPTION 'tenants must not contain NULL'
            USING ERRCODE = '22004',
                  DETAIL = 'A tenant is a created_by value; NULL names none.';
    END IF;
    IF max_priority IS NOT NULL AND level OPERATOR(pg_catalog.<>) 'submitter' THEN
        RAISE EXCEPTION 'only a submitter has a max_priority'
            USING ERRCODE = '22023',
                  HINT = 'Admins set any priority; workers create no jobs.';
    END IF;
    IF max_priority OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'max_priority must not be negative: %', max_priority
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

    IF level OPERATOR(pg_catalog.=) 'submitter' THEN
        EXECUTE pg_catalog.format(
            'INSERT INTO %I.batch_job_submitters AS s (submitter, max_priority)'
            ' VALUES ($1, COALESCE($2, 0)) ON CONFLICT (submitter) DO UPDATE'
            ' SET max_priority = COALESCE($2, s.max_priority)', nsp)
            USING role, max_priority;
    END IF;

    /*
     * Not ALL: TRIGGER (or REFERENCES) on these tables would let an admin
     * attach code that the SECURITY DEFINER functions then run as the
     * extension's owner.
     */
    IF level OPERATOR(pg_catalog.=) 'admin' THEN
        EXECUTE pg_catalog.format(
            'GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLE %I.batch_jobs,'
            ' %I.batch_job_deltas, %I.batch_job_workers, %I.batch_job_submitters,'
            ' %I.batch_job_followups, %I.batch_jobs_archive TO %s',
            nsp, nsp, nsp, nsp, nsp, nsp, role);
        EXECUTE pg_catalog.format('GRANT SELECT ON %I.batch_job_progress, %I.batch_job_figures TO %s',
                                  nsp, nsp, role);
        EXECUTE pg_catalog.format('GRANT ALL ON SEQUENCE %I.batch_jobs_job_id_seq TO %s',
                                  nsp, role);
    END IF;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_grant(regrole, text, text[], integer) IS
    'gives a role worker, submitter or admin access to batchjob; a worker may be given the tenants it serves, a submitter the highest priority it may set';
REVOKE ALL ON FUNCTION @extschema@.batchjob_grant(regrole, text, text[], integer) FROM PUBLIC;

/*
 * batchjob_revoke(role): as in 1.1, plus the priority ceiling, and USAGE on
 * the extension's schema, which batchjob_grant gave: the role holds no
 * batchjob level afterwards.  USAGE stays when the role holds a privilege
 * on an object of that schema that is not batchjob's, since it needs the
 * schema for that.  It takes back batch_job_figures and the follow-up
 * section's objects too.
 */
CREATE OR REPLACE FUNCTION @extschema@.batchjob_revoke(role regrole)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ext oid;
    nspid oid;
    nsp text;
    fn regprocedure;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT e.oid, n.oid, n.nspname INTO ext, nspid, nsp
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob';

    FOR fn IN
        SELECT p.oid::pg_catalog.regprocedure
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid OPERATOR(pg_catalog.=) ext
           AND d.deptype OPERATOR(pg_catalog.=) 'e'
           AND p.proname OPERATOR(pg_catalog.<>) 'batchjob_tenant_visible'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', fn, role);
    END LOOP;
    EXECUTE pg_catalog.format(
        'REVOKE ALL ON TABLE %I.batch_jobs, %I.batch_job_deltas, %I.batch_job_progress,'
        ' %I.batch_job_figures, %I.batch_job_workers, %I.batch_job_submitters,'
        ' %I.batch_job_followups, %I.batch_jobs_archive FROM %s',
        nsp, nsp, nsp, nsp, nsp, nsp, nsp, nsp, role);
    EXECUTE pg_catalog.format('DELETE FROM %I.batch_job_workers WHERE worker OPERATOR(pg_catalog.=) $1', nsp)
        USING role;
    EXECUTE pg_catalog.format('DELETE FROM %I.batch_job_submitters WHERE submitter OPERATOR(pg_catalog.=) $1', nsp)
        USING role;
    EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE %I.batch_jobs_job_id_seq FROM %s',
                              nsp, role);

    -- a privilege of the role's own on a relation or function of the
    -- schema that is not batchjob's: it still needs the schema
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
         WHERE c.relnamespace OPERATOR(pg_catalog.=) nspid
           AND a.grantee OPERATOR(pg_catalog.=) role
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                              AND d.objid OPERATOR(pg_catalog.=) c.oid
                              AND d.refobjid OPERATOR(pg_catalog.=) ext
                              AND d.deptype OPERATOR(pg_catalog.=) 'e')
        UNION ALL
        SELECT FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
         WHERE p.pronamespace OPERATOR(pg_catalog.=) nspid
           AND a.grantee OPERATOR(pg_catalog.=) role
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                              AND d.objid OPERATOR(pg_catalog.=) p.oid
                              AND d.refobjid OPERATOR(pg_catalog.=) ext
                              AND d.deptype OPERATOR(pg_catalog.=) 'e'))
    THEN
        EXECUTE pg_catalog.format('REVOKE USAGE ON SCHEMA %I FROM %s', nsp, role);
    END IF;
END;
$$;

/* ==== begin: follow-up jobs and retention (1.2) ==================== */

/*
 * Follow-up jobs.  A follow-up is a plain, top-level job that starts when
 * the jobs it waits for (parents or plain jobs) finish.  While it waits it
 * is PENDING with run_at 'infinity': the claim, batchjob_next_pending and
 * the batchjob_jobs_available notice pass it over with their statements
 * and their cost unchanged, and, having no parent, it is in no parent's
 * child counters.  One row of batch_job_followups per job it waits for;
 * the waited-for job carries has_followers, which the trigger's WHEN
 * clause reads from the new row, so a queue without follow-ups never
 * queues an event.  batchjob_start_followups() holds the rule of what
 * starts and what is cancelled (src/followups.c creates follow-ups).
 *
 * A follow-up may be a parent (is_parent), split or given children while
 * it waits.  The jobs created below a waiting follow-up parent, or below a
 * parent nested in one, get run_at 'infinity' (HELD_RUN_AT in batchjob.c:
 * the parent is PENDING with run_at 'infinity' and the root of its tree
 * has a wait not done), so the claim passes them over as it passes over
 * the follow-up itself.  Its start gives every job below it that is
 * PENDING with run_at 'infinity' run_at now(); its cancel cancels them.
 *
 * A column with a constant default: no row is rewritten.
 */
ALTER TABLE @extschema@.batch_jobs
    ADD COLUMN has_followers boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN @extschema@.batch_jobs.has_followers IS
    'true once a follow-up waits for this job (batchjob_create_followup); its finish then starts or cancels them';

/*
 * No foreign keys: TRUNCATE batch_jobs must keep working (a trigger below
 * empties this table with it), and a row stays when the follow-up is
 * deleted by hand; batchjob_purge removes the rows of the jobs it deletes.
 */
CREATE TABLE @extschema@.batch_job_followups (
    job_id       bigint NOT NULL,
    after_job_id bigint NOT NULL,
    after        text NOT NULL,
    done_at      timestamptz,
    PRIMARY KEY (job_id, after_job_id),
    CONSTRAINT batch_job_followups_after_check
        CHECK (after OPERATOR(pg_catalog.=) ANY (ARRAY['success', 'complete']::pg_catalog.text[])),
    CONSTRAINT batch_job_followups_self_check
        CHECK (job_id OPERATOR(pg_catalog.<>) after_job_id)
);

CREATE INDEX batch_job_followups_after_idx
    ON @extschema@.batch_job_followups (after_job_id) WHERE done_at IS NULL;

COMMENT ON TABLE @extschema@.batch_job_followups IS
    'what each follow-up job waits for: one row per waited-for job';
COMMENT ON COLUMN @extschema@.batch_job_followups.job_id IS
    'the follow-up';
COMMENT ON COLUMN @extschema@.batch_job_followups.after_job_id IS
    'a job it waits for';
COMMENT ON COLUMN @extschema@.batch_job_followups.after IS
    'success: start only if that job ends COMPLETED with no failed child, else cancel; complete: start however it ends';
COMMENT ON COLUMN @extschema@.batch_job_followups.done_at IS
    'when that job finished (NULL while the follow-up still waits for it)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.batch_job_followups', '');
REVOKE ALL ON TABLE @extschema@.batch_job_followups FROM PUBLIC;

CREATE FUNCTION @extschema@.batchjob_create_followup(
    after_job_ids bigint[],
    criteria jsonb,
    created_by text,
    after text DEFAULT 'success',
    priority integer DEFAULT 0,
    total_records bigint DEFAULT NULL,
    is_parent boolean DEFAULT false)
RETURNS @extschema@.batch_jobs
AS 'MODULE_PATHNAME', 'batchjob_create_followup'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.batchjob_create_followup(bigint[], jsonb, text, text, integer, bigint, boolean) IS
    'creates a plain job (with is_parent, a parent) that waits until every job of after_job_ids has finished; after success it is cancelled unless each ended COMPLETED with no failed child';
REVOKE ALL ON FUNCTION @extschema@.batchjob_create_followup(bigint[], jsonb, text, text, integer, bigint, boolean) FROM PUBLIC;

/*
 * Starts or cancels what waits for a finished job; the one place of the
 * rule.  Called by the trigger in the transaction that finished the job,
 * by batchjob_create_followup for jobs already finished, and by an admin
 * as the repair batchjob_verify() points to.  A job that does not exist
 * counts as neither finished well nor at all: what waits for it is
 * cancelled.  Each follow-up's row is locked before its wait is marked
 * done, so two jobs of a fan-in finishing at once take turns, and the
 * second sees the first's mark and starts it (each statement here reads
 * a fresh snapshot under READ COMMITTED).  Follow-ups are locked in
 * job_id order.
 */
CREATE FUNCTION @extschema@.batchjob_start_followups(job_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    f record;
    d record;
    held bigint;
    there boolean;
    ok boolean;
    outcome text;
    n bigint := 0;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'job_id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT j.status, j.child_failed, j.error_details INTO p
      FROM @extschema@.batch_jobs j WHERE j.job_id OPERATOR(pg_catalog.=) $1;
    there := FOUND;
    IF there AND NOT p.status OPERATOR(pg_catalog.=) ANY (ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[]) THEN
        RETURN 0;
    END IF;
    ok := there AND p.status OPERATOR(pg_catalog.=) 'COMPLETED'
          AND p.child_failed OPERATOR(pg_catalog.=) 0;
    outcome := CASE WHEN NOT there THEN 'was deleted'
                    ELSE 'ended ' OPERATOR(pg_catalog.||) p.status OPERATOR(pg_catalog.||)
                         COALESCE(' (' OPERATOR(pg_catalog.||) p.error_details OPERATOR(pg_catalog.||) ')', '')
               END;

    FOR f IN
        SELECT w.job_id AS id, w.after, j.is_parent
          FROM @extschema@.batch_job_followups w
          LEFT JOIN @extschema@.batch_jobs j ON j.job_id OPERATOR(pg_catalog.=) w.job_id
         WHERE w.after_job_id OPERATOR(pg_catalog.=) $1 AND w.done_at IS NULL
         ORDER BY w.job_id
    LOOP
        IF f.is_parent THEN
            -- The right to fold into the follow-up and into every parent
            -- below it, in job_id order, before any of their rows (the
            -- order of src/fold.c): a rollup into one of them then leaves
            -- its difference rather than wait for a row held here, and a
            -- split or a new child below waits for this transaction.
            -- batchjob_fold(id) takes that right until the end of the
            -- transaction.
            FOR d IN
                SELECT f.id AS id
                UNION
                SELECT x.job_id FROM (
                    WITH RECURSIVE t(job_id) AS (
                        SELECT c.job_id FROM @extschema@.batch_jobs c
                         WHERE c.parent_job_id OPERATOR(pg_catalog.=) f.id AND c.is_parent
                        UNION
                        SELECT c.job_id FROM @extschema@.batch_jobs c
                          JOIN t ON c.parent_job_id OPERATOR(pg_catalog.=) t.job_id
                         WHERE c.is_parent)
                    SELECT t.job_id FROM t) x
                ORDER BY 1
            LOOP
                PERFORM @extschema@.batchjob_fold(d.id);
            END LOOP;
        END IF;
        PERFORM FROM @extschema@.batch_jobs j
         WHERE j.job_id OPERATOR(pg_catalog.=) f.id FOR NO KEY UPDATE;
        UPDATE @extschema@.batch_job_followups w SET done_at = pg_catalog.now()
         WHERE w.job_id OPERATOR(pg_catalog.=) f.id
           AND w.after_job_id OPERATOR(pg_catalog.=) $1 AND w.done_at IS NULL;
        CONTINUE WHEN NOT FOUND;
        IF f.after OPERATOR(pg_catalog.=) 'success' AND NOT ok THEN
            -- it waits for nothing else any more
            UPDATE @extschema@.batch_job_followups w SET done_at = pg_catalog.now()
             WHERE w.job_id OPERATOR(pg_catalog.=) f.id AND w.done_at IS NULL;
            held := 0;
            IF f.is_parent THEN
                -- as batchjob_cancel: the unfinished leaves below it (and
                -- the parents there without children), locked in job_id
                -- order; the parents with children follow by the rollup.
                -- Every job below it stops being held back.
                UPDATE @extschema@.batch_jobs j
                   SET status = CASE WHEN NOT j.is_parent
                                       OR (j.child_pending OPERATOR(pg_catalog.+) j.child_processing
                                           OPERATOR(pg_catalog.+) j.child_completed
                                           OPERATOR(pg_catalog.+) j.child_failed
                                           OPERATOR(pg_catalog.+) j.child_cancelled) OPERATOR(pg_catalog.=) 0
                                     THEN 'CANCELLED' ELSE j.status END,
                       run_at = CASE WHEN j.run_at OPERATOR(pg_catalog.=) 'infinity'::pg_catalog.timestamptz
                                     THEN pg_catalog.now() ELSE j.run_at END,
                       error_details = CASE WHEN NOT j.is_parent
                                              OR (j.child_pending OPERATOR(pg_catalog.+) j.child_processing
                                                  OPERATOR(pg_catalog.+) j.child_completed
                                                  OPERATOR(pg_catalog.+) j.child_failed
                                                  OPERATOR(pg_catalog.+) j.child_cancelled) OPERATOR(pg_catalog.=) 0
                                            THEN pg_catalog.format('follow-up %s was cancelled: job %s, which it waited for, %s',
                                                                   f.id, $1, outcome)
                                            ELSE j.error_details END
                 WHERE j.job_id OPERATOR(pg_catalog.=) ANY (ARRAY(
                        WITH RECURSIVE t(job_id) AS (
                            SELECT c.job_id FROM @extschema@.batch_jobs c
                             WHERE c.parent_job_id OPERATOR(pg_catalog.=) f.id
                            UNION
                            SELECT c.job_id FROM @extschema@.batch_jobs c
                              JOIN t ON c.parent_job_id OPERATOR(pg_catalog.=) t.job_id)
                        SELECT k.job_id FROM @extschema@.batch_jobs k
                         WHERE k.job_id IN (SELECT t.job_id FROM t)
                           AND k.status OPERATOR(pg_catalog.=) ANY (ARRAY['PENDING', 'PROCESSING']::pg_catalog.text[])
                         ORDER BY k.job_id FOR UPDATE))
                   AND j.status OPERATOR(pg_catalog.=) ANY (ARRAY['PENDING', 'PROCESSING']::pg_catalog.text[]);
                GET DIAGNOSTICS held = ROW_COUNT;
            END IF;
            -- a parent with children follows them (the rollup above);
            -- without children it is cancelled here, as a plain job is
            UPDATE @extschema@.batch_jobs j
               SET status = CASE WHEN NOT j.is_parent
                                   OR (j.child_pending OPERATOR(pg_catalog.+) j.child_processing
                                       OPERATOR(pg_catalog.+) j.child_completed
                                       OPERATOR(pg_catalog.+) j.child_failed
                                       OPERATOR(pg_catalog.+) j.child_cancelled) OPERATOR(pg_catalog.=) 0
                                 THEN 'CANCELLED' ELSE j.status END,
                   run_at = pg_catalog.now(),
                   error_details = pg_catalog.format('job %s, which it waited for, %s', $1, outcome)
             WHERE j.job_id OPERATOR(pg_catalog.=) f.id
               AND (j.status OPERATOR(pg_catalog.=) 'PENDING'
                    OR (j.is_parent AND held OPERATOR(pg_catalog.>) 0));
            IF FOUND THEN
                n := n OPERATOR(pg_catalog.+) 1;
            END IF;
        ELSIF NOT EXISTS (SELECT FROM @extschema@.batch_job_followups w
                           WHERE w.job_id OPERATOR(pg_catalog.=) f.id AND w.done_at IS NULL) THEN
            UPDATE @extschema@.batch_jobs j SET run_at = pg_catalog.now()
             WHERE j.job_id OPERATOR(pg_catalog.=) f.id
               AND j.status OPERATOR(pg_catalog.=) 'PENDING'
               AND j.run_at OPERATOR(pg_catalog.=) 'infinity'::pg_catalog.timestamptz;
            IF FOUND THEN
                n := n OPERATOR(pg_catalog.+) 1;
                IF f.is_parent THEN
                    -- the jobs held back below it, in job_id order
                    UPDATE @extschema@.batch_jobs j SET run_at = pg_catalog.now()
                     WHERE j.job_id OPERATOR(pg_catalog.=) ANY (ARRAY(
                            WITH RECURSIVE t(job_id) AS (
                                SELECT c.job_id FROM @extschema@.batch_jobs c
                                 WHERE c.parent_job_id OPERATOR(pg_catalog.=) f.id
                                UNION
                                SELECT c.job_id FROM @extschema@.batch_jobs c
                                  JOIN t ON c.parent_job_id OPERATOR(pg_catalog.=) t.job_id)
                            SELECT k.job_id FROM @extschema@.batch_jobs k
                             WHERE k.job_id IN (SELECT t.job_id FROM t)
                               AND k.status OPERATOR(pg_catalog.=) 'PENDING'
                               AND k.run_at OPERATOR(pg_catalog.=) 'infinity'::pg_catalog.timestamptz
                             ORDER BY k.job_id FOR UPDATE))
                       AND j.status OPERATOR(pg_catalog.=) 'PENDING'
                       AND j.run_at OPERATOR(pg_catalog.=) 'infinity'::pg_catalog.timestamptz;
                END IF;
                PERFORM pg_catalog.pg_notify('batchjob_jobs_available', '');
            END IF;
        END IF;
    END LOOP;
    RETURN n;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_start_followups(bigint) IS
    'starts (or, after success, cancels) the follow-ups waiting for a finished job; returns how many changed. Runs by itself when the job finishes; call it to repair what batchjob_verify() reports';
REVOKE ALL ON FUNCTION @extschema@.batchjob_start_followups(bigint) FROM PUBLIC;

CREATE FUNCTION @extschema@.batchjob_followups_finish()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.status OPERATOR(pg_catalog.=) ANY (ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[])
       AND NOT OLD.status OPERATOR(pg_catalog.=) ANY (ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[]) THEN
        PERFORM @extschema@.batchjob_start_followups(NEW.job_id);
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_followups_finish() IS
    'trigger: a job that has followers finished; starts or cancels them';
REVOKE ALL ON FUNCTION @extschema@.batchjob_followups_finish() FROM PUBLIC;

CREATE TRIGGER batch_jobs_followups
    AFTER UPDATE ON @extschema@.batch_jobs
    FOR EACH ROW
    -- only the flag here, the finish in the function: PostgreSQL rebuilds a
    -- trigger's WHEN from its stored node tree in every statement that
    -- updates batch_jobs, and a longer WHEN cost every update about 9 µs
    WHEN (NEW.has_followers)
    EXECUTE FUNCTION @extschema@.batchjob_followups_finish();

/* TRUNCATE batch_jobs takes what waits with it, so no reused id inherits a wait. */
CREATE FUNCTION @extschema@.batchjob_followups_truncate()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE @extschema@.batch_job_followups;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_followups_truncate() IS
    'trigger: TRUNCATE batch_jobs empties batch_job_followups too';
REVOKE ALL ON FUNCTION @extschema@.batchjob_followups_truncate() FROM PUBLIC;

CREATE TRIGGER batch_jobs_truncate_followups
    AFTER TRUNCATE ON @extschema@.batch_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.batchjob_followups_truncate();

/*
 * Retention.  batchjob_purge deletes whole finished trees, root first in
 * job_id order, each only when every job in it is finished and the root
 * finished before now() - older_than.  It locks the root, then the tree
 * level by level, each level's rows through the parent index with SKIP
 * LOCKED, and leaves the tree when any row is held (a worker, a fold, a
 * retry) or is not finished: the rows of a level it locked are counted
 * against all the rows of that level, and the locks of a tree it leaves go
 * with the subtransaction.  A level's parents are locked before their
 * children are read, so a child inserted under them before that is seen,
 * and one being inserted holds its parent's row (the foreign key's check)
 * against the lock, so the tree is left; once every row is locked no child
 * can be added.
 *
 * Cost per row, which is what a purge next to live workers takes from
 * them: the tree is read and locked through the parent index (one descent
 * per parent, not one per row), deleted with one statement through the
 * same index (the rollup then finds every parent of the tree deleted with
 * it and folds nothing), and, with archive, copied by that statement's
 * RETURNING.  What remains per row is the foreign key's ON DELETE CASCADE
 * trigger, which runs a query for every deleted row (finding nothing, as
 * the statement took the children too).  plan_cache_mode is pinned to
 * force_generic_plan for the call: otherwise the plan cache keeps making a
 * custom plan of that query for every row (its generic plan, for a parent
 * of a thousand children, looks dearer than one for a leaf), and planning
 * was most of the purge's time.
 */
CREATE TABLE @extschema@.batch_jobs_archive (LIKE @extschema@.batch_jobs);
ALTER TABLE @extschema@.batch_jobs_archive ADD PRIMARY KEY (job_id);

COMMENT ON TABLE @extschema@.batch_jobs_archive IS
    'finished jobs batchjob_purge(..., archive => true) removed from batch_jobs, as they were';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.batch_jobs_archive', '');
REVOKE ALL ON TABLE @extschema@.batch_jobs_archive FROM PUBLIC;

CREATE FUNCTION @extschema@.batchjob_purge(older_than interval,
                                           max_rows integer DEFAULT 10000,
                                           archive boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    cutoff timestamptz;
    root bigint;
    tree bigint[];
    parents bigint[];
    level bigint[];
    kids bigint[];
    next_level bigint[];
    n bigint;
    purged bigint := 0;
BEGIN
    IF older_than IS NULL OR max_rows IS NULL OR archive IS NULL THEN
        RAISE EXCEPTION 'older_than, max_rows and archive must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF max_rows OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'max_rows must be at least 1: %', max_rows
            USING ERRCODE = '22023';
    END IF;
    IF older_than OPERATOR(pg_catalog.<) '0'::pg_catalog.interval THEN
        RAISE EXCEPTION 'older_than must not be negative: %', older_than
            USING ERRCODE = '22023';
    END IF;
    cutoff := pg_catalog.now() OPERATOR(pg_catalog.-) older_than;

    FOR root IN
        SELECT r.job_id FROM @extschema@.batch_jobs r
         WHERE r.parent_job_id IS NULL
           AND r.status OPERATOR(pg_catalog.=) ANY (ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[])
           AND r.completed_at OPERATOR(pg_catalog.<) cutoff
         ORDER BY r.job_id
    LOOP
        EXIT WHEN purged OPERATOR(pg_catalog.>=) max_rows;
        BEGIN
            PERFORM FROM @extschema@.batch_jobs r
             WHERE r.job_id OPERATOR(pg_catalog.=) root
               AND r.status OPERATOR(pg_catalog.=) ANY (ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[])
             FOR UPDATE SKIP LOCKED;
            CONTINUE WHEN NOT FOUND;
            tree := ARRAY[root];
            parents := ARRAY[root];
            level := ARRAY[root];
            -- level by level: lock the finished children of the level's
            -- (locked) parents, then count all of them
            WHILE level IS NOT NULL LOOP
                SELECT pg_catalog.array_agg(l.job_id),
                       pg_catalog.array_agg(l.job_id) FILTER (WHERE l.is_parent)
                  INTO kids, next_level
                  FROM (SELECT c.job_id, c.is_parent FROM @extschema@.batch_jobs c
                         WHERE c.parent_job_id OPERATOR(pg_catalog.=) ANY (level)
                           AND c.status OPERATOR(pg_catalog.=) ANY (ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[])
                           FOR UPDATE SKIP LOCKED) l;
                SELECT pg_catalog.count(*) INTO n FROM @extschema@.batch_jobs c
                 WHERE c.parent_job_id OPERATOR(pg_catalog.=) ANY (level);
                IF n OPERATOR(pg_catalog.<>) COALESCE(pg_catalog.cardinality(kids), 0) THEN
                    -- held or unfinished: leave it, and let go of its locks
                    RAISE EXCEPTION USING ERRCODE = 'BJ001';
                END IF;
                tree := tree OPERATOR(pg_catalog.||) kids;
                -- a tree larger than what is left of max_rows waits for a later call
                IF pg_catalog.cardinality(tree) OPERATOR(pg_catalog.>)
                   (max_rows OPERATOR(pg_catalog.-) purged) THEN
                    RAISE EXCEPTION USING ERRCODE = 'BJ001';
                END IF;
                parents := parents OPERATOR(pg_catalog.||) next_level;
                level := next_level;
            END LOOP;
            IF pg_catalog.cardinality(tree) OPERATOR(pg_catalog.>)
               (max_rows OPERATOR(pg_catalog.-) purged) THEN
                RAISE EXCEPTION USING ERRCODE = 'BJ001';
            END IF;
            -- only parents have waiting differences
            DELETE FROM @extschema@.batch_job_deltas d
             WHERE d.parent_job_id OPERATOR(pg_catalog.=) ANY (parents);
            DELETE FROM @extschema@.batch_job_followups w
             WHERE w.job_id OPERATOR(pg_catalog.=) ANY (tree);
            -- the whole tree, through the parent index: the root and the
            -- children of each of its parents
            IF archive THEN
                WITH gone AS (
                    DELETE FROM @extschema@.batch_jobs j
                     WHERE j.job_id OPERATOR(pg_catalog.=) root
                        OR j.parent_job_id OPERATOR(pg_catalog.=) ANY (parents)
                    RETURNING j.*)
                INSERT INTO @extschema@.batch_jobs_archive SELECT * FROM gone;
            ELSE
                DELETE FROM @extschema@.batch_jobs j
                 WHERE j.job_id OPERATOR(pg_catalog.=) root
                    OR j.parent_job_id OPERATOR(pg_catalog.=) ANY (parents);
            END IF;
            GET DIAGNOSTICS n = ROW_COUNT;
            IF n OPERATOR(pg_catalog.<>) pg_catalog.cardinality(tree) THEN
                RAISE EXCEPTION 'batchjob_purge deleted % rows of the tree of job %, which has %',
                    n, root, pg_catalog.cardinality(tree);
            END IF;
            purged := purged OPERATOR(pg_catalog.+) n;
        EXCEPTION WHEN SQLSTATE 'BJ001' THEN
            NULL;
        END;
    END LOOP;
    RETURN purged;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_purge(interval, integer, boolean) IS
    'deletes finished job trees whose root finished before now() - older_than, at most max_rows rows, skipping rows others hold; with archive, copies them to batch_jobs_archive first; returns how many rows it deleted';
REVOKE ALL ON FUNCTION @extschema@.batchjob_purge(interval, integer, boolean) FROM PUBLIC;

/* ==== end: follow-up jobs and retention (1.2) ====================== */

/*
 * No privilege the scripts did not intend.  The scripts revoke from PUBLIC
 * only, so privileges the installing role set with ALTER DEFAULT
 * PRIVILEGES (EXECUTE on its new functions for some role, say) would land
 * on every object the scripts create, batchjob_grant included.  Every
 * function, table, view and sequence of the extension that this script run
 * created (the extension's own dependency on it was recorded in this
 * transaction: all of them on CREATE EXTENSION, the new ones on an update)
 * loses every privilege of every role but its owner (and PUBLIC's EXECUTE
 * on batchjob_tenant_visible, batchjob_child_total and batchjob_row_check,
 * which is meant).  Then, on an update, each
 * role gets its batchjob level again, as batchjob_grant
 * gave it, read from what existed before (an admin may UPDATE batch_jobs,
 * a submitter may execute batchjob_create_child, a worker is listed in
 * batch_job_workers; NULLs in its list are dropped).  Updated submitters
 * keep the highest priority their jobs already have as their ceiling, so
 * no working client is refused.  A grant made by hand on a function that
 * 1.2 replaces is not carried over: give it again after the update.
 */
DO $$
DECLARE
    ext oid;
    -- this transaction's xid, as pg_depend.xmin shows it (txid_current()
    -- with the epoch taken off)
    me text := (pg_catalog.txid_current() OPERATOR(pg_catalog.%) 4294967296)::pg_catalog.text;
    obj record;
    r record;
BEGIN
    SELECT e.oid INTO ext FROM pg_catalog.pg_extension e
     WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob';

    FOR obj IN
        WITH RECURSIVE new_objects AS (
            SELECT d.classid, d.objid
              FROM pg_catalog.pg_depend d
             WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
               AND d.refobjid OPERATOR(pg_catalog.=) ext
               AND d.deptype OPERATOR(pg_catalog.=) 'e'
               AND d.xmin::pg_catalog.text OPERATOR(pg_catalog.=) me
            UNION
            -- a table's identity sequence belongs to the table, not the extension
            SELECT d.classid, d.objid
              FROM pg_catalog.pg_depend d
              JOIN new_objects t
                ON t.classid OPERATOR(pg_catalog.=) d.refclassid
               AND t.objid OPERATOR(pg_catalog.=) d.refobjid
             WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               AND d.deptype OPERATOR(pg_catalog.=) 'i')
        SELECT pg_catalog.format('FUNCTION %s', p.oid::pg_catalog.regprocedure) AS name,
               a.grantee
          FROM new_objects o
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) o.objid
         CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
           -- every role that reads batch_jobs evaluates the policy, and
           -- every reader of batch_job_progress the child total
           AND NOT (p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['batchjob_tenant_visible',
                                                              'batchjob_child_total',
                                                              'batchjob_row_check']::pg_catalog.name[])
                    AND a.grantee OPERATOR(pg_catalog.=) 0)
        UNION
        SELECT pg_catalog.format('%s %s',
                   CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                   c.oid::pg_catalog.regclass),
               a.grantee
          FROM new_objects o
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) o.objid
         CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
         WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', obj.name,
            CASE WHEN obj.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                 ELSE obj.grantee::pg_catalog.regrole::pg_catalog.text END);
    END LOOP;

    -- each role's level, from the objects that were there before this run
    FOR r IN
        WITH old AS (
            SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
             WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
               AND d.refobjid OPERATOR(pg_catalog.=) ext
               AND d.deptype OPERATOR(pg_catalog.=) 'e'
               AND d.xmin::pg_catalog.text OPERATOR(pg_catalog.<>) me),
        holders AS (
            SELECT a.grantee, 'admin' AS level
              FROM old o JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) o.objid
             CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
             WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               AND c.oid OPERATOR(pg_catalog.=) '@extschema@.batch_jobs'::pg_catalog.regclass
               AND a.privilege_type OPERATOR(pg_catalog.=) 'UPDATE'
               AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
            UNION
            SELECT a.grantee, 'submitter'
              FROM old o JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) o.objid
             CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
             WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
               AND p.proname OPERATOR(pg_catalog.=) 'batchjob_create_child'
               AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
               AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
               AND a.grantee OPERATOR(pg_catalog.<>) 0
            UNION
            SELECT w.worker, 'worker' FROM @extschema@.batch_job_workers w)
        SELECT h.grantee::pg_catalog.regrole AS role, h.level
          FROM holders h
         WHERE h.level OPERATOR(pg_catalog.=) 'admin'
            OR NOT EXISTS (SELECT FROM holders x
                            WHERE x.grantee OPERATOR(pg_catalog.=) h.grantee
                              AND x.level OPERATOR(pg_catalog.=) 'admin')
         ORDER BY 1, 2
    LOOP
        IF r.level OPERATOR(pg_catalog.=) 'worker' THEN
            PERFORM @extschema@.batchjob_grant(r.role, 'worker',
                (SELECT pg_catalog.array_remove(w.tenants, NULL::pg_catalog.text)
                   FROM @extschema@.batch_job_workers w
                  WHERE w.worker OPERATOR(pg_catalog.=) r.role));
        ELSIF r.level OPERATOR(pg_catalog.=) 'submitter' THEN
            PERFORM @extschema@.batchjob_grant(r.role, 'submitter', max_priority =>
                (SELECT GREATEST(0, pg_catalog.max(j.priority))
                   FROM @extschema@.batch_jobs j
                  WHERE j.created_by OPERATOR(pg_catalog.=) pg_catalog.pg_get_userbyid(r.role)::pg_catalog.text));
        ELSE
            PERFORM @extschema@.batchjob_grant(r.role, 'admin');
        END IF;
    END LOOP;
END
$$;


/* ====================================================================
 * Scale-out on PL/Proxy (README, "Scale-out on PL/Proxy"): this database
 * as partition p of a layout of up to 64 partitions.  Job ids encode their
 * partition: the id sequence starts at 64 + p and steps by 64, so
 * job_id & (n - 1) = p for every power of two n up to 64, and partitions
 * can be added later without renumbering.  The partition is a row of
 * batch_job_partition, which pg_dump keeps; the sequence's increment and
 * start are not dumped, so a trigger on that table applies them again
 * whenever the row is written (by batchjob_set_partition, or by the
 * restore's COPY after CREATE EXTENSION made a plain sequence).
 * ==================================================================== */

CREATE TABLE @extschema@.batch_job_partition (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    partition integer NOT NULL CHECK (partition BETWEEN 0 AND 63)
);

COMMENT ON TABLE @extschema@.batch_job_partition IS
    'the partition this database is in a PL/Proxy layout (one row, or none when it is not a partition)';
COMMENT ON COLUMN @extschema@.batch_job_partition.only_row IS
    'always true: the table holds at most one row';
COMMENT ON COLUMN @extschema@.batch_job_partition.partition IS
    'the partition number p, 0 to 63: every job id here is 64 * k + p';

REVOKE ALL ON TABLE @extschema@.batch_job_partition FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.batch_job_partition', '');

/*
 * Makes the job id sequence give ids of the partition just written: start
 * 64 + p, step 64, and the next value the first id of the partition not
 * below the sequence's next one.  A sequence value restored after this
 * (pg_dump sets it after the table data) is an id of the partition too,
 * and keeps the step.
 */
CREATE FUNCTION @extschema@.batchjob_partition_apply()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p integer := NEW.partition;
    last_id bigint;
    called boolean;
    next_id bigint;
BEGIN
    IF TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' THEN
        RAISE EXCEPTION 'batchjob_partition_apply must be an AFTER ROW trigger'
            USING ERRCODE = '39P01';
    END IF;
    SELECT s.last_value, s.is_called INTO last_id, called
      FROM @extschema@.batch_jobs_job_id_seq s;
    next_id := GREATEST(CASE WHEN called THEN last_id OPERATOR(pg_catalog.+) 1 ELSE last_id END,
                        64 OPERATOR(pg_catalog.+) p);
    -- OPERATOR() forms all bind alike, left to right: hence the parentheses
    next_id := next_id OPERATOR(pg_catalog.+)
               (((p OPERATOR(pg_catalog.-) (next_id OPERATOR(pg_catalog.%) 64))
                 OPERATOR(pg_catalog.+) 64) OPERATOR(pg_catalog.%) 64);
    EXECUTE pg_catalog.format(
        'ALTER SEQUENCE @extschema@.batch_jobs_job_id_seq INCREMENT BY 64 MINVALUE 1 START WITH %s RESTART WITH %s',
        64 OPERATOR(pg_catalog.+) p, next_id);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_partition_apply() IS
    'trigger: makes the job id sequence give ids of the partition recorded in batch_job_partition';
REVOKE ALL ON FUNCTION @extschema@.batchjob_partition_apply() FROM PUBLIC;

CREATE TRIGGER batch_job_partition_apply
    AFTER INSERT OR UPDATE ON @extschema@.batch_job_partition
    FOR EACH ROW EXECUTE FUNCTION @extschema@.batchjob_partition_apply();

/*
 * Makes this database partition p.  Refused while it holds a job whose id
 * is not of partition p: such a job could not be found through the proxy.
 */
CREATE FUNCTION @extschema@.batchjob_set_partition(partition integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stray bigint;
BEGIN
    IF partition IS NULL THEN
        RAISE EXCEPTION 'partition must not be null' USING ERRCODE = '22004';
    END IF;
    IF partition OPERATOR(pg_catalog.<) 0 OR partition OPERATOR(pg_catalog.>) 63 THEN
        RAISE EXCEPTION 'partition must be between 0 and 63: %', partition
            USING ERRCODE = '22023';
    END IF;
    LOCK TABLE @extschema@.batch_jobs IN SHARE MODE;
    SELECT j.job_id INTO stray FROM @extschema@.batch_jobs j
     WHERE (j.job_id OPERATOR(pg_catalog.&) 63) OPERATOR(pg_catalog.<>) partition
     LIMIT 1;
    IF stray IS NOT NULL THEN
        RAISE EXCEPTION 'job % is not of partition %', stray, partition
            USING ERRCODE = '55000',
                  DETAIL = 'Every job id of partition p is 64 * k + p; this database holds jobs made before it became a partition.',
                  HINT = 'Make an empty database the partition.';
    END IF;
    INSERT INTO @extschema@.batch_job_partition AS t (only_row, partition)
    VALUES (true, batchjob_set_partition.partition)
    ON CONFLICT (only_row) DO UPDATE SET partition = EXCLUDED.partition;
    RETURN partition;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_set_partition(integer) IS
    'makes this database partition p (0 to 63) of a PL/Proxy layout: new job ids are 64 * k + p';
REVOKE ALL ON FUNCTION @extschema@.batchjob_set_partition(integer) FROM PUBLIC;

/*
 * The partition this database is, NULL when it is none.  SECURITY DEFINER:
 * batchjob_verify() runs as the admin that calls it, who may not read
 * batch_job_partition.
 */
CREATE FUNCTION @extschema@.batchjob_partition()
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT t.partition FROM @extschema@.batch_job_partition t
$$;

COMMENT ON FUNCTION @extschema@.batchjob_partition() IS
    'the partition this database is in a PL/Proxy layout (batchjob_set_partition), NULL when none';
REVOKE ALL ON FUNCTION @extschema@.batchjob_partition() FROM PUBLIC;

/*
 * batchjob_verify(), defined once for 1.2 here, after everything it reads:
 * the 1.1 checks, each parent's figures read from batch_job_figures, plus differences that have waited longer than a fold may
 * take (FOLD_BOUND_SECS in src/fold.c), follow-ups left waiting (a start
 * that was lost, a waited-for job deleted, a wait without has_followers),
 * and, on a partition, a job whose id is not of the partition and a job id
 * sequence that would give one.
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
-- each parent's effective figures, from the one place that computes them;
-- a parent with children but no total counts it as 0, as a fold stores it
parents AS (
    SELECT f.job_id, f.status, f.waiting AS w_n,
           f.pending, f.processing, f.completed, f.failed, f.cancelled,
           COALESCE(f.total_records, 0) AS total, f.processed_records AS processed,
           f.success_count AS success, f.error_count AS errors,
           COALESCE(k.pending, 0) AS k_pending, COALESCE(k.processing, 0) AS k_processing,
           COALESCE(k.completed, 0) AS k_completed, COALESCE(k.failed, 0) AS k_failed,
           COALESCE(k.cancelled, 0) AS k_cancelled, k.total AS k_total,
           k.processed AS k_processed, k.success AS k_success, k.errors AS k_errors
      FROM @extschema@.batch_job_figures f
      LEFT JOIN kids k ON k.id OPERATOR(pg_catalog.=) f.job_id)
SELECT x.job_id, x.problem FROM (
    SELECT job_id, pg_catalog.format(
               'child counts %s/%s/%s/%s/%s (pending/processing/completed/failed/cancelled, with %s waiting differences) but its children are %s/%s/%s/%s/%s',
               pending, processing, completed, failed, cancelled, w_n,
               k_pending, k_processing, k_completed, k_failed, k_cancelled) AS problem
      FROM parents
     WHERE (pending, processing, completed, failed, cancelled)
           IS DISTINCT FROM (k_pending, k_processing, k_completed, k_failed, k_cancelled)
    UNION ALL
    SELECT job_id, pg_catalog.format(
               'figures %s/%s/%s/%s (total/processed/success/errors, with waiting differences) but its children sum to %s/%s/%s/%s',
               total, processed, success, errors,
               k_total, k_processed, k_success, k_errors)
      FROM parents
     WHERE k_total IS NOT NULL
       AND (total, processed, success, errors)
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
    SELECT d.parent_job_id, 'waiting differences for a job that does not exist'
      FROM @extschema@.batch_job_deltas d
     WHERE NOT EXISTS (SELECT FROM @extschema@.batch_jobs j
                        WHERE j.job_id OPERATOR(pg_catalog.=) d.parent_job_id)
     GROUP BY d.parent_job_id
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
    UNION ALL
    -- a follow-up still waits for a job that has finished: its start was lost
    SELECT w.job_id, pg_catalog.format('follow-up still waits for job %s, which is %s',
                                       w.after_job_id, a.status)
      FROM @extschema@.batch_job_followups w
      JOIN @extschema@.batch_jobs f ON f.job_id OPERATOR(pg_catalog.=) w.job_id
      JOIN @extschema@.batch_jobs a ON a.job_id OPERATOR(pg_catalog.=) w.after_job_id
     WHERE w.done_at IS NULL
       AND f.status OPERATOR(pg_catalog.=) 'PENDING'
       AND a.status OPERATOR(pg_catalog.=) ANY (ARRAY['COMPLETED', 'FAILED', 'CANCELLED']::pg_catalog.text[])
    UNION ALL
    SELECT w.job_id, pg_catalog.format('follow-up waits for job %s, which does not exist',
                                       w.after_job_id)
      FROM @extschema@.batch_job_followups w
      JOIN @extschema@.batch_jobs f ON f.job_id OPERATOR(pg_catalog.=) w.job_id
     WHERE w.done_at IS NULL
       AND f.status OPERATOR(pg_catalog.=) 'PENDING'
       AND NOT EXISTS (SELECT FROM @extschema@.batch_jobs a
                        WHERE a.job_id OPERATOR(pg_catalog.=) w.after_job_id)
    UNION ALL
    SELECT w.after_job_id, pg_catalog.format('follow-up %s waits for it, but has_followers is false',
                                             w.job_id)
      FROM @extschema@.batch_job_followups w
      JOIN @extschema@.batch_jobs a ON a.job_id OPERATOR(pg_catalog.=) w.after_job_id
     WHERE w.done_at IS NULL AND NOT a.has_followers
    UNION ALL
    SELECT f.job_id, 'follow-up waits for nothing any more but has not started'
      FROM @extschema@.batch_jobs f
     WHERE f.status OPERATOR(pg_catalog.=) 'PENDING'
       AND f.run_at OPERATOR(pg_catalog.=) 'infinity'::pg_catalog.timestamptz
       AND EXISTS (SELECT FROM @extschema@.batch_job_followups w
                    WHERE w.job_id OPERATOR(pg_catalog.=) f.job_id)
       AND NOT EXISTS (SELECT FROM @extschema@.batch_job_followups w
                        WHERE w.job_id OPERATOR(pg_catalog.=) f.job_id
                          AND w.done_at IS NULL)
    UNION ALL
    SELECT j.job_id, pg_catalog.format('job id is not of partition %s (job_id & 63 = %s)',
                                       t.partition, j.job_id OPERATOR(pg_catalog.&) 63)
      FROM @extschema@.batch_jobs j,
           (SELECT @extschema@.batchjob_partition() AS partition) t
     WHERE (j.job_id OPERATOR(pg_catalog.&) 63) OPERATOR(pg_catalog.<>) t.partition
    UNION ALL
    SELECT NULL::bigint, pg_catalog.format(
               'the job id sequence (start %s, increment %s, last %s) gives ids outside partition %s',
               s.seqstart, s.seqincrement, q.last_value, t.partition)
      FROM (SELECT @extschema@.batchjob_partition() AS partition) t,
           pg_catalog.pg_sequence s,
           @extschema@.batch_jobs_job_id_seq q
     WHERE t.partition IS NOT NULL
       AND s.seqrelid OPERATOR(pg_catalog.=) '@extschema@.batch_jobs_job_id_seq'::pg_catalog.regclass
       AND (s.seqincrement OPERATOR(pg_catalog.<>) 64
            OR (s.seqstart OPERATOR(pg_catalog.%) 64) OPERATOR(pg_catalog.<>) t.partition
            OR (q.last_value OPERATOR(pg_catalog.%) 64) OPERATOR(pg_catalog.<>) t.partition)
) x
ORDER BY x.job_id, x.problem;
$$;

/*
 * The objects of this section, created after the privilege sweep above:
 * no privilege ALTER DEFAULT PRIVILEGES gave reaches them either.
 */
DO $$
DECLARE
    obj record;
BEGIN
    FOR obj IN
        SELECT pg_catalog.format('FUNCTION %s', p.oid::pg_catalog.regprocedure) AS name, a.grantee
          FROM pg_catalog.pg_proc p CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
                   '@extschema@.batchjob_partition_apply()'::pg_catalog.regprocedure,
                   '@extschema@.batchjob_set_partition(integer)'::pg_catalog.regprocedure,
                   '@extschema@.batchjob_partition()'::pg_catalog.regprocedure])
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
        UNION
        SELECT pg_catalog.format('TABLE %s', c.oid::pg_catalog.regclass), a.grantee
          FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
         WHERE c.oid OPERATOR(pg_catalog.=) '@extschema@.batch_job_partition'::pg_catalog.regclass
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', obj.name,
            CASE WHEN obj.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                 ELSE obj.grantee::pg_catalog.regrole::pg_catalog.text END);
    END LOOP;
END
$$;
