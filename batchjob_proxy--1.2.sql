/* batchjob_proxy--1.2.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION batchjob_proxy" to load this file. \quit

/*
 * The batchjob 1.2 API on a PL/Proxy proxy database: the same function
 * names, arguments and result columns as the batchjob extension, each call
 * run on the partition that owns its job (README, "Scale-out on
 * PL/Proxy").  The partitions are the options p0, p1, ... of the foreign
 * server batchjob (FOREIGN DATA WRAPPER plproxy); each partition database
 * runs batchjob with batchjob_set_partition(p), so job_id & (n - 1) = p.
 *
 * Each API function is a PL/pgSQL function over a PL/Proxy function named
 * batchjob_proxy_*: the PL/Proxy function routes, the PL/pgSQL one turns a
 * partition that cannot be reached into one clear error (08006, naming
 * the partition), and does what PL/Proxy cannot (trying partitions in
 * turn).  Both run as the caller, so each partition sees the caller's role.
 * Every remote call commits on its partition on its own.
 */

/*
 * A job as the proxy returns it.  The columns are named, so PL/Proxy asks
 * the partitions for exactly these: a column added to batch_jobs on the
 * partitions later does not break the proxy.
 */
CREATE TYPE @extschema@.batch_jobs AS (
    job_id             bigint,
    status             text,
    criteria           jsonb,
    total_records      bigint,
    processed_records  bigint,
    success_count      bigint,
    error_count        bigint,
    error_details      text,
    created_by         text,
    priority           integer,
    is_parent          boolean,
    parent_job_id      bigint,
    batch_number       integer,
    batch_offset       bigint,
    batch_size         integer,
    child_pending      bigint,
    child_processing   bigint,
    child_completed    bigint,
    child_failed       bigint,
    child_cancelled    bigint,
    created_at         timestamptz,
    updated_at         timestamptz,
    started_at         timestamptz,
    completed_at       timestamptz,
    run_at             timestamptz,
    locked_by          text,
    locked_until       timestamptz,
    attempts           integer,
    max_attempts       integer,
    on_child_failure   text
);

COMMENT ON TYPE @extschema@.batch_jobs IS
    'a row of batch_jobs on its partition, as the proxy API returns it';

/* ---- routing and errors ---------------------------------------------- */

/* How many partitions the server batchjob lists (p0, p1, ...). */
CREATE FUNCTION @extschema@.batchjob_proxy_partitions()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    SELECT pg_catalog.count(*)::integer INTO n
      FROM pg_catalog.pg_foreign_server s,
           pg_catalog.pg_options_to_table(s.srvoptions) o
     WHERE s.srvname OPERATOR(pg_catalog.=) 'batchjob'
       AND o.option_name OPERATOR(pg_catalog.~) '^(p|partition_)[0-9]+$';
    IF n OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'no partitions: the foreign server batchjob lists none'
            USING ERRCODE = '42704',
                  HINT = 'CREATE SERVER batchjob FOREIGN DATA WRAPPER plproxy OPTIONS (p0 ''…'', p1 ''…'', …).';
    END IF;
    RETURN n;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_proxy_partitions() IS
    'how many partitions the foreign server batchjob lists';

/*
 * The partition of a job: job_id & (n - 1), for the errors that name it
 * and for batchjob_create_parent (routing uses batchjob_proxy_hash).
 */
CREATE FUNCTION @extschema@.batchjob_proxy_partition_of(job_id bigint)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT (COALESCE(job_id, 0) OPERATOR(pg_catalog.&)
        (@extschema@.batchjob_proxy_partitions() OPERATOR(pg_catalog.-) 1)::bigint)::integer
$$;

COMMENT ON FUNCTION @extschema@.batchjob_proxy_partition_of(bigint) IS
    'the partition that owns a job: job_id & (number of partitions - 1)';

/*
 * The RUN ON hash of a job: its id (a NULL id hashes to 0, so partition 0's
 * batchjob refuses it with its own error, 22004).  PL/Proxy masks the hash
 * with the number of partitions less one itself, which is
 * batchjob_proxy_partition_of's job_id & (n - 1), without reading the
 * foreign server's options at every call as that function does: routing
 * through it cost each proxied call more than the hop.  A one-expression
 * SQL function without a SET clause, so that PL/Proxy's query inlines it;
 * COALESCE is not looked up in any schema, so no search_path changes it.
 */
CREATE FUNCTION @extschema@.batchjob_proxy_hash(job_id bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT COALESCE(job_id, 0)
$$;

COMMENT ON FUNCTION @extschema@.batchjob_proxy_hash(bigint) IS
    'the RUN ON hash of a job: its id, 0 for NULL (PL/Proxy takes it modulo the number of partitions)';

/*
 * Whether a PL/Proxy error says a partition could not be reached (connect,
 * send, receive, timeouts), as opposed to an error the partition raised,
 * which PL/Proxy passes on with the partition's SQLSTATE.
 */
CREATE FUNCTION @extschema@.batchjob_proxy_is_unreachable(message text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT message OPERATOR(pg_catalog.~)
       '^PL/Proxy function [^:]*: (\[[^]]*\] (PQconnectStart|PQconnectPoll|PQsendQuery|PQsendQueryParams|PQconsumeInput|PQflush)|connect timeout|query timeout)'
$$;

COMMENT ON FUNCTION @extschema@.batchjob_proxy_is_unreachable(text) IS
    'whether a PL/Proxy error message says a partition could not be reached';

/*
 * Raises again an error caught around a PL/Proxy call, as the client of a
 * single batchjob database would see it: 08006 naming the partition when
 * the partition could not be reached (partition NULL: one of several of a
 * call); an error the partition raised with its own SQLSTATE, message,
 * detail and hint, without the prefixes PL/Proxy adds; anything else as
 * it was.
 */
CREATE FUNCTION @extschema@.batchjob_proxy_raise(partition integer, sqlstate text,
    message text, detail text, hint text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text[];
BEGIN
    IF @extschema@.batchjob_proxy_is_unreachable(message) THEN
        IF partition IS NULL THEN
            RAISE EXCEPTION 'a partition of this call is unreachable'
                USING ERRCODE = '08006', DETAIL = message,
                      HINT = 'The partitions that were reached did their part. Calls for other partitions still work; nothing on the unreachable one is lost.';
        END IF;
        RAISE EXCEPTION 'partition % is unreachable', partition
            USING ERRCODE = '08006', DETAIL = message,
                  HINT = 'Calls for jobs of other partitions still work; nothing on this one is lost. Retry once it is back.';
    END IF;
    detail := NULLIF(detail, '');
    hint := NULLIF(hint, '');
    m := pg_catalog.regexp_match(message, '^[^ ]+\(\d+\): \[[^]]*\] REMOTE [A-Z]+: (.*)$', 's');
    IF m IS NOT NULL THEN
        message := m[1];
        detail := pg_catalog.regexp_replace(detail, '^Remote detail: ', '');
        hint := pg_catalog.regexp_replace(hint, '^Remote hint: ', '');
    END IF;
    IF detail IS NULL AND hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message;
    ELSIF hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, DETAIL = detail;
    ELSIF detail IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, HINT = hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, DETAIL = detail, HINT = hint;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_proxy_raise(integer, text, text, text, text) IS
    'raises an error caught around a PL/Proxy call again: 08006 "partition N is unreachable", or the partition''s own error as it raised it';

/* Where batchjob_create_parent without a parent goes next. */
CREATE SEQUENCE @extschema@.batchjob_proxy_turn;

COMMENT ON SEQUENCE @extschema@.batchjob_proxy_turn IS
    'the turn of partitions for new top-level parents';

/* ---- PL/Proxy functions: routing only --------------------------------- */

-- by job id
CREATE FUNCTION @extschema@.batchjob_proxy_progress(i_job_id bigint, i_processed bigint,
    i_succeeded bigint, i_failed bigint, i_worker text, i_attempt integer)
RETURNS @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_job_id);
    TARGET batchjob_progress;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_heartbeat(i_job_id bigint, i_worker text,
    i_lease interval, i_attempt integer)
RETURNS boolean LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_job_id);
    TARGET batchjob_heartbeat;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_complete(i_job_id bigint, i_worker text,
    i_attempt integer)
RETURNS @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_job_id);
    TARGET batchjob_complete;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_fail(i_job_id bigint, i_error_details text,
    i_retry boolean, i_worker text, i_attempt integer)
RETURNS @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_job_id);
    TARGET batchjob_fail;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_cancel(i_job_id bigint)
RETURNS bigint LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_job_id);
    TARGET batchjob_cancel;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_retry(i_job_id bigint)
RETURNS @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_job_id);
    TARGET batchjob_retry;
$$;

-- by parent id: a parent's children live on its partition
CREATE FUNCTION @extschema@.batchjob_proxy_child_counts(i_parent_job_id bigint,
    OUT pending bigint, OUT processing bigint, OUT completed bigint,
    OUT failed bigint, OUT cancelled bigint, OUT total bigint)
RETURNS record LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_parent_job_id);
    TARGET batchjob_child_counts;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_children(i_parent_job_id bigint)
RETURNS SETOF @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_parent_job_id);
    TARGET batchjob_children;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_refresh_parent(i_parent_job_id bigint)
RETURNS @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_parent_job_id);
    TARGET batchjob_refresh_parent;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_fold(i_parent_job_id bigint)
RETURNS bigint LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_parent_job_id);
    TARGET batchjob_fold;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_split(i_parent_job_id bigint,
    i_total_records bigint, i_batch_size integer)
RETURNS SETOF @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_parent_job_id);
    TARGET batchjob_split;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_create_child(i_parent_job_id bigint,
    i_batch_number integer, i_batch_offset bigint, i_batch_size integer,
    i_criteria jsonb, i_priority integer)
RETURNS @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_parent_job_id);
    TARGET batchjob_create_child;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_create_parent(i_criteria jsonb,
    i_created_by text, i_priority integer, i_total_records bigint,
    i_on_child_failure text, i_parent_job_id bigint)
RETURNS @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON @extschema@.batchjob_proxy_hash(i_parent_job_id);
    TARGET batchjob_create_parent;
$$;

-- arrays of job ids: each partition gets its own elements
CREATE FUNCTION @extschema@.batchjob_proxy_complete(i_job_ids bigint[], i_worker text)
RETURNS SETOF bigint LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    SPLIT i_job_ids;
    RUN ON @extschema@.batchjob_proxy_hash(i_job_ids);
    TARGET batchjob_complete;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_fail(i_job_ids bigint[], i_error_details text,
    i_retry boolean, i_worker text)
RETURNS SETOF bigint LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    SPLIT i_job_ids;
    RUN ON @extschema@.batchjob_proxy_hash(i_job_ids);
    TARGET batchjob_fail;
$$;

-- by partition number (PL/Proxy maps any number to a partition, as it does
-- a hash: batchjob_claim passes a random start and the numbers after it)
CREATE FUNCTION @extschema@.batchjob_proxy_create_parent_on(i_partition integer,
    i_criteria jsonb, i_created_by text, i_priority integer,
    i_total_records bigint, i_on_child_failure text)
RETURNS @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON i_partition;
    SELECT r.job_id, r.status, r.criteria, r.total_records,
           r.processed_records, r.success_count, r.error_count,
           r.error_details, r.created_by, r.priority, r.is_parent,
           r.parent_job_id, r.batch_number, r.batch_offset, r.batch_size,
           r.child_pending, r.child_processing, r.child_completed,
           r.child_failed, r.child_cancelled, r.created_at, r.updated_at,
           r.started_at, r.completed_at, r.run_at, r.locked_by,
           r.locked_until, r.attempts, r.max_attempts, r.on_child_failure
      FROM batchjob_create_parent(i_criteria, i_created_by, i_priority,
                                  i_total_records, i_on_child_failure) r;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_claim_on(i_partition integer,
    i_worker text, i_max_jobs integer, i_lease interval)
RETURNS SETOF @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON i_partition;
    SELECT r.job_id, r.status, r.criteria, r.total_records,
           r.processed_records, r.success_count, r.error_count,
           r.error_details, r.created_by, r.priority, r.is_parent,
           r.parent_job_id, r.batch_number, r.batch_offset, r.batch_size,
           r.child_pending, r.child_processing, r.child_completed,
           r.child_failed, r.child_cancelled, r.created_at, r.updated_at,
           r.started_at, r.completed_at, r.run_at, r.locked_by,
           r.locked_until, r.attempts, r.max_attempts, r.on_child_failure
      FROM batchjob_claim(i_worker, i_max_jobs, i_lease) r;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_complete_and_claim_on(i_partition integer,
    i_done bigint[], i_worker text, i_max_jobs integer, i_lease interval)
RETURNS SETOF @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON i_partition;
    SELECT r.job_id, r.status, r.criteria, r.total_records,
           r.processed_records, r.success_count, r.error_count,
           r.error_details, r.created_by, r.priority, r.is_parent,
           r.parent_job_id, r.batch_number, r.batch_offset, r.batch_size,
           r.child_pending, r.child_processing, r.child_completed,
           r.child_failed, r.child_cancelled, r.created_at, r.updated_at,
           r.started_at, r.completed_at, r.run_at, r.locked_by,
           r.locked_until, r.attempts, r.max_attempts, r.on_child_failure
      FROM batchjob_complete_and_claim(i_done, i_worker, i_max_jobs, i_lease) r;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_next_pending_on(i_partition integer)
RETURNS SETOF @extschema@.batch_jobs LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON i_partition;
    SELECT r.job_id, r.status, r.criteria, r.total_records,
           r.processed_records, r.success_count, r.error_count,
           r.error_details, r.created_by, r.priority, r.is_parent,
           r.parent_job_id, r.batch_number, r.batch_offset, r.batch_size,
           r.child_pending, r.child_processing, r.child_completed,
           r.child_failed, r.child_cancelled, r.created_at, r.updated_at,
           r.started_at, r.completed_at, r.run_at, r.locked_by,
           r.locked_until, r.attempts, r.max_attempts, r.on_child_failure
      FROM batchjob_next_pending() r WHERE r.job_id IS NOT NULL;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_reap_on(i_partition integer)
RETURNS bigint LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON i_partition;
    SELECT batchjob_reap() AS reaped;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_fold_on(i_partition integer)
RETURNS bigint LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON i_partition;
    SELECT batchjob_fold(NULL::bigint) AS folded;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_verify_on(i_partition integer)
RETURNS TABLE (job_id bigint, problem text) LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON i_partition;
    SELECT v.job_id, v.problem FROM batchjob_verify() v;
$$;

CREATE FUNCTION @extschema@.batchjob_proxy_progress_on(i_partition integer)
RETURNS TABLE (job_id bigint, parent_job_id bigint, status text,
               pending bigint, processing bigint, completed bigint,
               failed bigint, cancelled bigint, children bigint,
               processed_records bigint, total_records bigint,
               percent_done numeric, records_per_second numeric,
               estimated_finish timestamptz)
LANGUAGE plproxy AS $$
    CLUSTER 'batchjob';
    RUN ON i_partition;
    SELECT v.job_id, v.parent_job_id, v.status, v.pending, v.processing,
           v.completed, v.failed, v.cancelled, v.children,
           v.processed_records, v.total_records, v.percent_done,
           v.records_per_second, v.estimated_finish
      FROM batch_job_progress v;
$$;

/* ---- the API ----------------------------------------------------------- */

CREATE FUNCTION @extschema@.batchjob_progress(job_id bigint, processed bigint,
    succeeded bigint, failed bigint, worker text DEFAULT NULL, attempt integer DEFAULT NULL)
RETURNS @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN @extschema@.batchjob_proxy_progress(job_id, processed, succeeded, failed, worker, attempt);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_heartbeat(job_id bigint, worker text,
    lease interval DEFAULT '5 minutes', attempt integer DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN @extschema@.batchjob_proxy_heartbeat(job_id, worker, lease, attempt);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_complete(job_id bigint, worker text DEFAULT NULL,
    attempt integer DEFAULT NULL)
RETURNS @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN @extschema@.batchjob_proxy_complete(job_id, worker, attempt);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_fail(job_id bigint, error_details text,
    retry boolean DEFAULT true, worker text DEFAULT NULL, attempt integer DEFAULT NULL)
RETURNS @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN @extschema@.batchjob_proxy_fail(job_id, error_details, retry, worker, attempt);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_cancel(job_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN @extschema@.batchjob_proxy_cancel(job_id);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_retry(job_id bigint)
RETURNS @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN @extschema@.batchjob_proxy_retry(job_id);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_child_counts(parent_job_id bigint,
    OUT pending bigint, OUT processing bigint, OUT completed bigint,
    OUT failed bigint, OUT cancelled bigint, OUT total bigint)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    SELECT c.pending, c.processing, c.completed, c.failed, c.cancelled, c.total
      INTO pending, processing, completed, failed, cancelled, total
      FROM @extschema@.batchjob_proxy_child_counts(parent_job_id) c;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(parent_job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_children(parent_job_id bigint)
RETURNS SETOF @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN QUERY SELECT * FROM @extschema@.batchjob_proxy_children(parent_job_id);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(parent_job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_refresh_parent(parent_job_id bigint)
RETURNS @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN @extschema@.batchjob_proxy_refresh_parent(parent_job_id);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(parent_job_id), st, msg, det, hnt);
END;
$$;

-- one parent on its partition; NULL: every parent on every partition
CREATE FUNCTION @extschema@.batchjob_fold(parent_job_id bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
    part integer;
    folded bigint := 0;
BEGIN
    IF parent_job_id IS NOT NULL THEN
        part := @extschema@.batchjob_proxy_partition_of(parent_job_id);
        RETURN @extschema@.batchjob_proxy_fold(parent_job_id);
    END IF;
    -- not FOR part: the handler below must see the partition it was on
    FOR i IN 0 .. @extschema@.batchjob_proxy_partitions() OPERATOR(pg_catalog.-) 1 LOOP
        part := i;
        folded := folded OPERATOR(pg_catalog.+) @extschema@.batchjob_proxy_fold_on(part);
    END LOOP;
    RETURN folded;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(part, st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_split(parent_job_id bigint, total_records bigint,
    batch_size integer)
RETURNS SETOF @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN QUERY SELECT * FROM @extschema@.batchjob_proxy_split(parent_job_id, total_records, batch_size);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(parent_job_id), st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_create_child(parent_job_id bigint, batch_number integer,
    batch_offset bigint, batch_size integer, criteria jsonb DEFAULT NULL,
    priority integer DEFAULT NULL)
RETURNS @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    RETURN @extschema@.batchjob_proxy_create_child(parent_job_id, batch_number, batch_offset,
                                                   batch_size, criteria, priority);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(parent_job_id), st, msg, det, hnt);
END;
$$;

/*
 * Under a parent: on the parent's partition.  Without one: on the next
 * partition in turn, skipping one that cannot be reached (each try is one
 * call; a partition that is down costs its connect_timeout).
 */
CREATE FUNCTION @extschema@.batchjob_create_parent(criteria jsonb, created_by text,
    priority integer DEFAULT 0, total_records bigint DEFAULT NULL,
    on_child_failure text DEFAULT 'continue', parent_job_id bigint DEFAULT NULL)
RETURNS @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
    last_msg text;
    n integer;
    part integer;
BEGIN
    IF parent_job_id IS NOT NULL THEN
        BEGIN
            RETURN @extschema@.batchjob_proxy_create_parent(criteria, created_by, priority,
                total_records, on_child_failure, parent_job_id);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
            PERFORM @extschema@.batchjob_proxy_raise(@extschema@.batchjob_proxy_partition_of(parent_job_id), st, msg, det, hnt);
        END;
    END IF;
    n := @extschema@.batchjob_proxy_partitions();
    FOR i IN 1 .. n LOOP
        part := (pg_catalog.nextval('@extschema@.batchjob_proxy_turn'::pg_catalog.regclass)
                 OPERATOR(pg_catalog.%) n)::integer;
        BEGIN
            RETURN @extschema@.batchjob_proxy_create_parent_on(part, criteria, created_by,
                priority, total_records, on_child_failure);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
            IF NOT @extschema@.batchjob_proxy_is_unreachable(msg) THEN
                PERFORM @extschema@.batchjob_proxy_raise(NULL, st, msg, det, hnt);
            END IF;
            last_msg := msg;
        END;
    END LOOP;
    RAISE EXCEPTION 'no partition is reachable'
        USING ERRCODE = '08006', DETAIL = last_msg;
END;
$$;

CREATE FUNCTION @extschema@.batchjob_complete(job_ids bigint[], worker text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    IF job_ids IS NULL THEN
        RAISE EXCEPTION 'job_ids must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN (SELECT COALESCE(pg_catalog.sum(n), 0)::bigint
              FROM @extschema@.batchjob_proxy_complete(job_ids, worker) n);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(NULL, st, msg, det, hnt);
END;
$$;

CREATE FUNCTION @extschema@.batchjob_fail(job_ids bigint[], error_details text,
    retry boolean DEFAULT true, worker text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    IF job_ids IS NULL THEN
        RAISE EXCEPTION 'job_ids must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN (SELECT COALESCE(pg_catalog.sum(n), 0)::bigint
              FROM @extschema@.batchjob_proxy_fail(job_ids, error_details, retry, worker) n);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(NULL, st, msg, det, hnt);
END;
$$;

/*
 * Visits the partitions one at a time, from a random one on, each visit
 * its own claim (and so its own transaction on that partition), until it
 * has max_jobs; a partition that cannot be reached is skipped.  Priority
 * order holds within each partition, not across them.
 *
 * The visits go by RUN ON hash, start, start + 1, ..., which PL/Proxy maps
 * to partitions itself (masking with the number of partitions less one),
 * so the first visit, which is all a worker claiming one job usually
 * needs, does not read the foreign server's options for that number:
 * that read cost a single-job claim more than its remote call's parse.
 * The number is read when a second visit is due, or when the first one
 * failed other than for an unreachable partition (so that a database
 * without the server batchjob still gets batchjob_proxy_partitions'
 * 42704 rather than PL/Proxy's error).
 */
CREATE FUNCTION @extschema@.batchjob_claim(worker text, max_jobs integer DEFAULT 1,
    lease interval DEFAULT '5 minutes')
RETURNS SETOF @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    start integer := pg_catalog.floor(pg_catalog.random() OPERATOR(pg_catalog.*) 1073741824)::integer;
    n integer;
    i integer := 0;
    got bigint := 0;
    k bigint;
    reached integer := 0;
    st text;
    msg text;
    det text;
    hnt text;
    last_msg text;
BEGIN
    LOOP
        BEGIN
            RETURN QUERY SELECT * FROM @extschema@.batchjob_proxy_claim_on(
                start OPERATOR(pg_catalog.+) i, worker,
                (max_jobs OPERATOR(pg_catalog.-) got)::integer, lease);
            GET DIAGNOSTICS k = ROW_COUNT;
            got := got OPERATOR(pg_catalog.+) k;
            reached := reached OPERATOR(pg_catalog.+) 1;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
            IF NOT @extschema@.batchjob_proxy_is_unreachable(msg) THEN
                n := COALESCE(n, @extschema@.batchjob_proxy_partitions());
                PERFORM @extschema@.batchjob_proxy_raise(NULL, st, msg, det, hnt);
            END IF;
            last_msg := msg;
        END;
        EXIT WHEN got OPERATOR(pg_catalog.>=) max_jobs;
        n := COALESCE(n, @extschema@.batchjob_proxy_partitions());
        i := i OPERATOR(pg_catalog.+) 1;
        EXIT WHEN i OPERATOR(pg_catalog.>=) n;
    END LOOP;
    IF reached OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'no partition is reachable'
            USING ERRCODE = '08006', DETAIL = last_msg;
    END IF;
END;
$$;

/*
 * Batch mode.  When the done jobs are all of one partition (or there are
 * none), one call of that partition's batchjob_complete_and_claim
 * completes them and claims, in one remote transaction and one hop, all
 * or nothing as on one database; only when it claimed fewer than max_jobs
 * does the claim go on through the other partitions, as batchjob_claim
 * does.  Done jobs of several partitions are completed first as
 * batchjob_complete(done, worker) does through the proxy (each partition
 * its own transaction), then the claim follows.  With nothing to complete,
 * an unreachable partition is skipped; with jobs to complete on it, its
 * error names it.
 */
CREATE FUNCTION @extschema@.batchjob_complete_and_claim(done bigint[], worker text,
    max_jobs integer DEFAULT 1, lease interval DEFAULT '5 minutes')
RETURNS SETOF @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := @extschema@.batchjob_proxy_partitions();
    parts integer[];
    part integer;
    got bigint := 0;
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT (d OPERATOR(pg_catalog.&)
                                          (n OPERATOR(pg_catalog.-) 1)::bigint)::integer)
      INTO parts
      FROM pg_catalog.unnest(done) AS d;
    IF COALESCE(pg_catalog.cardinality(parts), 0) OPERATOR(pg_catalog.<=) 1 THEN
        part := COALESCE(parts[1],
                         pg_catalog.floor(pg_catalog.random() OPERATOR(pg_catalog.*) n)::integer);
        BEGIN
            RETURN QUERY SELECT * FROM @extschema@.batchjob_proxy_complete_and_claim_on(
                part, done, worker, max_jobs, lease);
            GET DIAGNOSTICS got = ROW_COUNT;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
            IF parts IS NOT NULL
               OR NOT @extschema@.batchjob_proxy_is_unreachable(msg) THEN
                PERFORM @extschema@.batchjob_proxy_raise(part, st, msg, det, hnt);
            END IF;
        END;
    ELSE
        PERFORM @extschema@.batchjob_complete(done, worker);
    END IF;
    IF got OPERATOR(pg_catalog.<) max_jobs THEN
        RETURN QUERY SELECT * FROM @extschema@.batchjob_claim(worker,
            (max_jobs OPERATOR(pg_catalog.-) got)::integer, lease);
    END IF;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_complete_and_claim(bigint[], text, integer, interval) IS
    'completes done and claims up to max_jobs through the proxy: one remote call when done is of one partition';

/* The best PENDING job of all partitions (a read: it claims nothing). */
CREATE FUNCTION @extschema@.batchjob_next_pending()
RETURNS @extschema@.batch_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
    part integer;
    best @extschema@.batch_jobs;
    r @extschema@.batch_jobs;
BEGIN
    -- not FOR part: the handler below must see the partition it was on
    FOR i IN 0 .. @extschema@.batchjob_proxy_partitions() OPERATOR(pg_catalog.-) 1 LOOP
        part := i;
        FOR r IN SELECT * FROM @extschema@.batchjob_proxy_next_pending_on(part) LOOP
            IF best.job_id IS NULL
               OR r.priority OPERATOR(pg_catalog.>) best.priority
               OR (r.priority OPERATOR(pg_catalog.=) best.priority
                   AND r.created_at OPERATOR(pg_catalog.<) best.created_at) THEN
                best := r;
            END IF;
        END LOOP;
    END LOOP;
    RETURN best;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(part, st, msg, det, hnt);
END;
$$;

/*
 * Reaps every partition it can reach; a partition that cannot be reached
 * is named in a WARNING and left for the next reap.
 */
CREATE FUNCTION @extschema@.batchjob_reap()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
    reaped bigint := 0;
BEGIN
    FOR part IN 0 .. @extschema@.batchjob_proxy_partitions() OPERATOR(pg_catalog.-) 1 LOOP
        BEGIN
            reaped := reaped OPERATOR(pg_catalog.+) @extschema@.batchjob_proxy_reap_on(part);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
            IF NOT @extschema@.batchjob_proxy_is_unreachable(msg) THEN
                PERFORM @extschema@.batchjob_proxy_raise(NULL, st, msg, det, hnt);
            END IF;
            RAISE WARNING 'partition % is unreachable: not reaped', part
                USING DETAIL = msg;
        END;
    END LOOP;
    RETURN reaped;
END;
$$;

/*
 * batchjob_verify() of every partition; a partition that cannot be reached
 * is itself a problem row (job_id NULL).
 */
CREATE FUNCTION @extschema@.batchjob_verify()
RETURNS TABLE (job_id bigint, problem text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    FOR part IN 0 .. @extschema@.batchjob_proxy_partitions() OPERATOR(pg_catalog.-) 1 LOOP
        BEGIN
            RETURN QUERY SELECT * FROM @extschema@.batchjob_proxy_verify_on(part);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
            IF NOT @extschema@.batchjob_proxy_is_unreachable(msg) THEN
                PERFORM @extschema@.batchjob_proxy_raise(NULL, st, msg, det, hnt);
            END IF;
            job_id := NULL;
            problem := pg_catalog.format('partition %s is unreachable: %s', part, msg);
            RETURN NEXT;
        END;
    END LOOP;
END;
$$;

/* Every partition's batch_job_progress, in partition order. */
CREATE FUNCTION @extschema@.batchjob_proxy_progress_all()
RETURNS TABLE (job_id bigint, parent_job_id bigint, status text,
               pending bigint, processing bigint, completed bigint,
               failed bigint, cancelled bigint, children bigint,
               processed_records bigint, total_records bigint,
               percent_done numeric, records_per_second numeric,
               estimated_finish timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
    part integer;
BEGIN
    -- not FOR part: the handler below must see the partition it was on
    FOR i IN 0 .. @extschema@.batchjob_proxy_partitions() OPERATOR(pg_catalog.-) 1 LOOP
        part := i;
        RETURN QUERY SELECT * FROM @extschema@.batchjob_proxy_progress_on(part);
    END LOOP;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
        det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    PERFORM @extschema@.batchjob_proxy_raise(part, st, msg, det, hnt);
END;
$$;

CREATE VIEW @extschema@.batch_job_progress AS
SELECT * FROM @extschema@.batchjob_proxy_progress_all();

/* ---- access ------------------------------------------------------------ */

/*
 * On the proxy: what a worker, submitter or admin needs here (EXECUTE on
 * the API functions of its level and the PL/Proxy functions under them,
 * USAGE on the server batchjob and a user mapping, so PL/Proxy connects to
 * each partition as the same role).  What the role may do on the jobs is
 * decided on each partition: run batchjob_grant there too, with the
 * tenants and priority ceiling, which the proxy does not take.
 */
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
        WHEN 'worker' THEN ARRAY['children', 'child_counts', 'next_pending', 'claim',
            'heartbeat', 'progress', 'complete', 'fail', 'complete_and_claim']
        WHEN 'submitter' THEN ARRAY['children', 'child_counts', 'next_pending',
            'create_parent', 'create_child', 'split', 'cancel', 'retry']
        WHEN 'admin' THEN NULL
        ELSE ARRAY[]::text[] END;
    IF wanted IS NOT NULL AND pg_catalog.cardinality(wanted) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'unknown access level "%"', level
            USING ERRCODE = '22023', HINT = 'Use worker, submitter or admin.';
    END IF;
    IF tenants IS NOT NULL OR max_priority IS NOT NULL THEN
        RAISE EXCEPTION 'tenants and max_priority are set on the partitions'
            USING ERRCODE = '22023',
                  HINT = 'Run batchjob_grant with them on each partition database.';
    END IF;

    SELECT n.nspname INTO nsp
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob_proxy';

    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %s', nsp, role);
    EXECUTE pg_catalog.format('GRANT SELECT ON %I.batch_job_progress TO %s', nsp, role);
    EXECUTE pg_catalog.format('GRANT USAGE ON FOREIGN SERVER batchjob TO %s', role);
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_user_mappings m
                    WHERE m.srvname OPERATOR(pg_catalog.=) 'batchjob'
                      AND m.umuser OPERATOR(pg_catalog.=) role) THEN
        EXECUTE pg_catalog.format('CREATE USER MAPPING FOR %s SERVER batchjob', role);
    END IF;
    FOR fn IN
        SELECT p.oid::pg_catalog.regprocedure
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                   WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob_proxy')
           AND d.deptype OPERATOR(pg_catalog.=) 'e'
           AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY['batchjob_grant', 'batchjob_revoke'])
           AND (wanted IS NULL
                OR p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['batchjob_proxy_partitions',
                    'batchjob_proxy_partition_of', 'batchjob_proxy_hash',
                    'batchjob_proxy_is_unreachable',
                    'batchjob_proxy_raise', 'batchjob_proxy_progress_all'])
                OR pg_catalog.regexp_replace(p.proname, '^batchjob_(proxy_)?|_on$', '', 'g')
                   OPERATOR(pg_catalog.=) ANY (wanted))
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', fn, role);
    END LOOP;
    IF wanted IS NULL OR 'create_parent' OPERATOR(pg_catalog.=) ANY (wanted) THEN
        EXECUTE pg_catalog.format('GRANT USAGE ON SEQUENCE %I.batchjob_proxy_turn TO %s', nsp, role);
    END IF;
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_grant(regrole, text, text[], integer) IS
    'on the proxy: gives a role what a worker, submitter or admin needs to call the partitions through it';

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
     WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob_proxy';
    FOR fn IN
        SELECT p.oid::pg_catalog.regprocedure
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                   WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob_proxy')
           AND d.deptype OPERATOR(pg_catalog.=) 'e'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM %s', fn, role);
    END LOOP;
    EXECUTE pg_catalog.format('REVOKE ALL ON %I.batch_job_progress FROM %s', nsp, role);
    EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE %I.batchjob_proxy_turn FROM %s', nsp, role);
    IF EXISTS (SELECT FROM pg_catalog.pg_foreign_server s
                WHERE s.srvname OPERATOR(pg_catalog.=) 'batchjob') THEN
        EXECUTE pg_catalog.format('REVOKE ALL ON FOREIGN SERVER batchjob FROM %s', role);
        EXECUTE pg_catalog.format('DROP USER MAPPING IF EXISTS FOR %s SERVER batchjob', role);
    END IF;
    EXECUTE pg_catalog.format('REVOKE USAGE ON SCHEMA %I FROM %s', nsp, role);
END;
$$;

COMMENT ON FUNCTION @extschema@.batchjob_revoke(regrole) IS
    'on the proxy: takes back what batchjob_grant gave a role here';

/* Nothing for PUBLIC: batchjob_grant gives each level what it needs. */
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::pg_catalog.regprocedure
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                                   WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob_proxy')
           AND d.deptype OPERATOR(pg_catalog.=) 'e'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    END LOOP;
END
$$;
REVOKE ALL ON @extschema@.batch_job_progress FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.batchjob_proxy_turn FROM PUBLIC;
