/*-------------------------------------------------------------------------
 *
 * src/util.c
 *	  What the functions and triggers share: status names and rules, the
 *	  column and prepared-plan caches, and returning rows to the caller.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupconvert.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "batchjob.h"

const char *const job_status_names[JOB_NSTATUS] = {
	"PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"
};

/*
 * The statements, with %1$s standing for the schema-qualified batch_jobs
 * and %2$s for batch_job_deltas.  Every
 * function that runs them pins search_path to pg_catalog, pg_temp, so the
 * unqualified operators and functions here can only be the built-in ones.
 */
typedef struct PlanSpec
{
	const char *sql;
	int			nargs;
	Oid			argtypes[10];
} PlanSpec;

#define NO_CHILDREN_YET \
	"child_pending + child_processing + child_completed + child_failed" \
	" + child_cancelled = 0"

/*
 * Selects, as j, every job below $1 at any depth; UNION, not UNION ALL, so
 * that the walk ends even if it meets a cycle.
 */
#define DESCENDANTS_OF_1 \
	"  WITH RECURSIVE d(job_id) AS (" \
	"   SELECT job_id FROM %1$s WHERE parent_job_id = $1" \
	"   UNION SELECT c.job_id FROM %1$s c JOIN d ON c.parent_job_id = d.job_id)" \
	"  SELECT j.job_id FROM %1$s j WHERE j.job_id IN (SELECT job_id FROM d)"

/*
 * Fails the PROCESSING jobs the WHERE clause names ($2 the error, $3
 * whether to retry).  Backoff before retry n: 2^(n-1) seconds, capped at
 * 2^12 s (about an hour; the exponent is capped before power() can
 * overflow), times a random factor in [0.5, 1.5) so that jobs failed
 * together do not come back together.
 */
#define FAIL_SQL(where) \
	"UPDATE %1$s SET error_details = $2," \
	" status = CASE WHEN $3 AND attempts < max_attempts" \
	"  THEN 'PENDING' ELSE 'FAILED' END," \
	" run_at = CASE WHEN $3 AND attempts < max_attempts" \
	"  THEN clock_timestamp() + make_interval(secs =>" \
	"   least(3600.0, power(2.0, least(greatest(attempts - 1, 0), 12)::float8))" \
	"   * (0.5 + random()))" \
	"  ELSE run_at END" \
	" WHERE " where " AND status = 'PROCESSING' AND NOT is_parent"

/*
 * The claim a worker call names (1.2): the job must be held by worker $n,
 * and be in attempt $n (the attempts value batchjob_claim returned), when
 * those are given (not NULL).  A claim increments attempts, so a worker
 * whose job was reaped and claimed again, even under the same worker name,
 * no longer matches.
 */
#define HELD_BY(param) \
	" AND (" param "::text IS NULL OR locked_by = " param ")"
#define HELD_IN_ATTEMPT(param) \
	" AND (" param "::int4 IS NULL OR attempts = " param ")"

/*
 * Every unfinished leaf below $1 (and every parent there that has no
 * children to follow), locked in job_id order so that two cancels, or a
 * cancel and a batch completion, cannot deadlock.  Parents with children
 * follow them through the rollup.
 */
#define CANCEL_DESCENDANTS_SQL(lock_option) \
	"UPDATE %1$s SET status = 'CANCELLED'" \
	" WHERE job_id = ANY (ARRAY(" \
	DESCENDANTS_OF_1 \
	"  AND j.status IN ('PENDING', 'PROCESSING')" \
	"  AND (NOT j.is_parent OR j.child_pending + j.child_processing" \
	"   + j.child_completed + j.child_failed + j.child_cancelled = 0)" \
	"  ORDER BY j.job_id FOR UPDATE" lock_option "))" \
	" AND status IN ('PENDING', 'PROCESSING')"

/*
 * Adds a difference to a parent's figures.  A parent without children keeps
 * figures of its own (a total given at creation); its first children
 * replace them rather than add to them, which is also what
 * batchjob_refresh_parent computes.
 */
#define ADD_FIGURES(pending, processing, completed, failed, cancelled, \
					total, processed, success, errors) \
	" child_pending = t.child_pending + " pending "," \
	" child_processing = t.child_processing + " processing "," \
	" child_completed = t.child_completed + " completed "," \
	" child_failed = t.child_failed + " failed "," \
	" child_cancelled = t.child_cancelled + " cancelled "," \
	" total_records = CASE WHEN " NO_CHILDREN_YET_T \
	"  THEN 0 ELSE coalesce(t.total_records, 0) END + " total "," \
	" processed_records = CASE WHEN " NO_CHILDREN_YET_T \
	"  THEN 0 ELSE t.processed_records END + " processed "," \
	" success_count = CASE WHEN " NO_CHILDREN_YET_T \
	"  THEN 0 ELSE t.success_count END + " success "," \
	" error_count = CASE WHEN " NO_CHILDREN_YET_T \
	"  THEN 0 ELSE t.error_count END + " errors

/*
 * A fold: a difference ($2..$10) into parent $1, by one plain UPDATE.  The
 * caller holds the right to fold (src/fold.c), so no other fold runs; the
 * UPDATE takes the row lock (waiting, at most, behind a plain UPDATE of the
 * parent).  The difference is the statement's own plus whatever
 * PLAN_TAKE_WAITING took out of batch_job_deltas just before.
 */
#define APPLY_SQL(returning) \
	"UPDATE %1$s t SET" \
	ADD_FIGURES("$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10") \
	" WHERE t.job_id = $1 RETURNING t.is_parent, " returning

#define NO_CHILDREN_YET_T \
	"t.child_pending + t.child_processing + t.child_completed" \
	" + t.child_failed + t.child_cancelled = 0"

/* does a fail_fast parent now have a failed child and unfinished ones? */
#define FAIL_FAST_PENDING \
	"t.on_child_failure = 'fail_fast' AND t.child_failed > 0" \
	" AND t.child_pending + t.child_processing > 0"

#define FOLD_ARGTYPES \
	{INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, \
	 INT8OID, INT8OID, INT8OID, INT8OID}

static const PlanSpec plan_specs[PLAN_COUNT] = {
	[PLAN_ROLLUP_APPLY] = {
		APPLY_SQL("false"), 10, FOLD_ARGTYPES
	},
	[PLAN_TAKE_WAITING] = {
		/*
		 * The differences waiting for parent $1, taken out to be folded in
		 * by the same transaction: each is folded exactly once, and those
		 * committed after this statement's snapshot wait for the next fold.
		 * An index probe that usually finds nothing.
		 */
		"DELETE FROM %2$s WHERE parent_job_id = $1 RETURNING child_pending,"
		" child_processing, child_completed, child_failed, child_cancelled,"
		" total_records, processed_records, success_count, error_count",
		1, {INT8OID}
	},
	[PLAN_INSERT_PARENT] = {
		"INSERT INTO %1$s"
		" (status, criteria, created_by, priority, total_records, is_parent)"
		" VALUES ('PENDING', $1, $2, $3, $4, true) RETURNING *",
		4, {JSONBOID, TEXTOID, INT4OID, INT8OID}
	},
	[PLAN_PARENT_INFO] = {
		/* the child counts include differences not folded in yet */
		"SELECT p.is_parent, p.criteria, p.priority, p.created_by,"
		" p.child_pending + d.pending, p.child_processing + d.processing,"
		" p.child_completed + d.completed, p.child_failed + d.failed,"
		" p.child_cancelled + d.cancelled"
		" FROM %1$s p, LATERAL (SELECT"
		"  coalesce(sum(child_pending), 0)::int8 AS pending,"
		"  coalesce(sum(child_processing), 0)::int8 AS processing,"
		"  coalesce(sum(child_completed), 0)::int8 AS completed,"
		"  coalesce(sum(child_failed), 0)::int8 AS failed,"
		"  coalesce(sum(child_cancelled), 0)::int8 AS cancelled"
		"  FROM %2$s WHERE parent_job_id = $1) d"
		" WHERE p.job_id = $1",
		1, {INT8OID}
	},
	[PLAN_LOCK_PARENT] = {
		"SELECT is_parent FROM %1$s WHERE job_id = $1 FOR NO KEY UPDATE",
		1, {INT8OID}
	},
	[PLAN_BATCH_EXISTS] = {
		"SELECT 1 FROM %1$s WHERE parent_job_id = $1 AND batch_number = $2",
		2, {INT8OID, INT4OID}
	},
	[PLAN_HAS_CHILDREN] = {
		"SELECT 1 FROM %1$s WHERE parent_job_id = $1 LIMIT 1",
		1, {INT8OID}
	},
	[PLAN_INSERT_CHILD] = {
		"INSERT INTO %1$s"
		" (status, criteria, created_by, priority, is_parent, parent_job_id,"
		" batch_number, batch_offset, batch_size, total_records)"
		" VALUES ('PENDING', $5, $7, $6, false, $1, $2, $3, $4, $4)"
		" RETURNING *",
		7, {INT8OID, INT4OID, INT8OID, INT4OID, JSONBOID, INT4OID, TEXTOID}
	},
	[PLAN_SPLIT] = {
		/* $4 batches of $3 records each, the last one holding the rest */
		"INSERT INTO %1$s"
		" (status, criteria, created_by, priority, is_parent, parent_job_id,"
		" batch_number, batch_offset, batch_size, total_records)"
		" SELECT 'PENDING', p.criteria, p.created_by, p.priority, false,"
		" p.job_id, n, (n - 1) * $3::int8,"
		" least($3::int8, $2 - (n - 1) * $3::int8)::int4,"
		" least($3::int8, $2 - (n - 1) * $3::int8)"
		" FROM %1$s p, generate_series(1, $4) AS n"
		" WHERE p.job_id = $1 ORDER BY n RETURNING *",
		4, {INT8OID, INT8OID, INT4OID, INT4OID}
	},
	[PLAN_SET_TOTAL] = {
		"UPDATE %1$s SET total_records = $2 WHERE job_id = $1",
		2, {INT8OID, INT8OID}
	},
	[PLAN_CHILDREN] = {
		"SELECT * FROM %1$s WHERE parent_job_id = $1"
		" ORDER BY batch_number, job_id",
		1, {INT8OID}
	},
	[PLAN_CHILD_AGGREGATES] = {
		/*
		 * One statement, so one snapshot: the differences deleted are
		 * exactly those of the child changes the sums see.
		 */
		"WITH folded AS (DELETE FROM %2$s WHERE parent_job_id = $1)"
		" SELECT count(*) FILTER (WHERE status = 'PENDING'),"
		" count(*) FILTER (WHERE status = 'PROCESSING'),"
		" count(*) FILTER (WHERE status = 'COMPLETED'),"
		" count(*) FILTER (WHERE status = 'FAILED'),"
		" count(*) FILTER (WHERE status = 'CANCELLED'),"
		" coalesce(sum(total_records), 0)::int8,"
		" coalesce(sum(processed_records), 0)::int8,"
		" coalesce(sum(success_count), 0)::int8,"
		" coalesce(sum(error_count), 0)::int8"
		" FROM %1$s WHERE parent_job_id = $1",
		1, {INT8OID}
	},
	[PLAN_REFRESH_APPLY] = {
		"UPDATE %1$s SET"
		" child_pending = $2, child_processing = $3, child_completed = $4,"
		" child_failed = $5, child_cancelled = $6, total_records = $7,"
		" processed_records = $8, success_count = $9, error_count = $10"
		" WHERE job_id = $1 RETURNING *",
		10,
		{INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
		INT8OID, INT8OID, INT8OID, INT8OID}
	},
	[PLAN_CLEAR_CHILD_COUNTS] = {
		"UPDATE %1$s SET child_pending = 0, child_processing = 0,"
		" child_completed = 0, child_failed = 0, child_cancelled = 0"
		" WHERE job_id = $1 AND NOT (" NO_CHILDREN_YET ")",
		1, {INT8OID}
	},
	[PLAN_NEXT_PENDING] = {
		"SELECT * FROM %1$s WHERE status = 'PENDING' AND NOT is_parent"
		" ORDER BY priority DESC, created_at, job_id LIMIT 1",
		0, {InvalidOid}
	},
	[PLAN_ROLLUP_APPLY_V11] = {
		APPLY_SQL(FAIL_FAST_PENDING), 10, FOLD_ARGTYPES
	},
	[PLAN_PARENT_KIND] = {
		"SELECT is_parent FROM %1$s WHERE job_id = $1",
		1, {INT8OID}
	},
	[PLAN_DROP_ALL_DELTAS] = {
		"DELETE FROM %2$s",
		0, {InvalidOid}
	},
	[PLAN_ANY_DELTA] = {
		"SELECT FROM %2$s LIMIT 1",
		0, {InvalidOid}
	},
	[PLAN_PENDING_PARENTS] = {
		/* a round's worth of parents, after $1: see FOLDER_ROUND_PARENTS */
		"SELECT DISTINCT parent_job_id FROM %2$s WHERE parent_job_id > $1"
		" ORDER BY 1 LIMIT 32",
		1, {INT8OID}
	},
	[PLAN_DROP_ORPHAN_DELTAS] = {
		"DELETE FROM %2$s WHERE parent_job_id = $1"
		" AND NOT EXISTS (SELECT FROM %1$s WHERE job_id = $1)",
		1, {INT8OID}
	},
	[PLAN_WAITING_FOR_PARENT] = {
		/* does any difference wait for parent $1?  An index probe */
		"SELECT FROM %2$s WHERE parent_job_id = $1 LIMIT 1",
		1, {INT8OID}
	},
	[PLAN_INSERT_PARENT_V11] = {
		"INSERT INTO %1$s"
		" (status, criteria, created_by, priority, total_records, is_parent,"
		" on_child_failure, parent_job_id)"
		" VALUES ('PENDING', $1, $2, $3, $4, true, $5, $6) RETURNING *",
		6, {JSONBOID, TEXTOID, INT4OID, INT8OID, TEXTOID, INT8OID}
	},
	[PLAN_NEXT_PENDING_V11] = {
		"SELECT * FROM %1$s WHERE status = 'PENDING' AND NOT is_parent"
		" AND run_at <= clock_timestamp()"
		" AND ($1::text[] IS NULL OR created_by = ANY ($1))"
		" ORDER BY priority DESC, created_at, job_id LIMIT 1",
		1, {TEXTARRAYOID}
	},
	[PLAN_CYCLE_CHECK] = {
		/* is $1 among the ancestors of $2 (or $2 itself)? */
		"WITH RECURSIVE up(id) AS (SELECT $2::int8"
		" UNION SELECT j.parent_job_id FROM %1$s j JOIN up ON j.job_id = up.id"
		" WHERE j.parent_job_id IS NOT NULL)"
		" SELECT 1 FROM up WHERE id = $1 LIMIT 1",
		2, {INT8OID, INT8OID}
	},
	[PLAN_JOB_STATE] = {
		/* columns JOB_STATE_STATUS .. JOB_STATE_ATTEMPTS (batchjob.h) */
		"SELECT status, is_parent, locked_by, attempts FROM %1$s"
		" WHERE job_id = $1",
		1, {INT8OID}
	},
	[PLAN_WORKER_TENANTS] = {
		/*
		 * also prepared outside a pinned search_path: operator qualified.
		 * A NULL in a stored list (batchjob_grant refuses them from 1.2 on)
		 * names no tenant and is dropped here.
		 */
		"SELECT pg_catalog.array_remove(tenants, NULL::pg_catalog.text)"
		" FROM %3$s WHERE worker OPERATOR(pg_catalog.=) $1",
		1, {OIDOID}
	},
	[PLAN_FOREIGN_JOB] = {
		/* the jobs $1 whose tenant is not among $2, in order */
		"SELECT job_id FROM %1$s WHERE job_id = ANY ($1)"
		" AND (created_by IS NULL OR NOT created_by = ANY ($2))"
		" ORDER BY job_id",
		2, {INT8ARRAYOID, TEXTARRAYOID}
	},
	[PLAN_JOB_ROW] = {
		"SELECT * FROM %1$s WHERE job_id = $1",
		1, {INT8OID}
	},
	[PLAN_CLAIM] = {
		/*
		 * SKIP LOCKED: a row another claimer holds is passed over, never
		 * waited for, and the partial pending index keeps finished rows out
		 * of the scan.  Rows are locked in claim order.
		 */
		"UPDATE %1$s SET status = 'PROCESSING', locked_by = $1,"
		" locked_until = clock_timestamp() + $3, attempts = attempts + 1"
		" WHERE job_id = ANY (ARRAY("
		"  SELECT job_id FROM %1$s WHERE status = 'PENDING' AND NOT is_parent"
		"  AND run_at <= clock_timestamp()"
		"  AND ($4::text[] IS NULL OR created_by = ANY ($4))"
		"  ORDER BY priority DESC, created_at, job_id LIMIT $2"
		"  FOR UPDATE SKIP LOCKED))"
		" AND status = 'PENDING' RETURNING *",
		4, {TEXTOID, INT4OID, INTERVALOID, TEXTARRAYOID}
	},
	[PLAN_HEARTBEAT] = {
		"UPDATE %1$s SET locked_until = clock_timestamp() + $3"
		" WHERE job_id = $1 AND locked_by = $2 AND status = 'PROCESSING'"
		" AND NOT is_parent" HELD_IN_ATTEMPT("$4"),
		4, {INT8OID, TEXTOID, INTERVALOID, INT4OID}
	},
	[PLAN_PROGRESS] = {
		"UPDATE %1$s SET processed_records = $2, success_count = $3,"
		" error_count = $4"
		" WHERE job_id = $1 AND status = 'PROCESSING' AND NOT is_parent"
		HELD_BY("$5") HELD_IN_ATTEMPT("$6")
		" RETURNING *",
		6, {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, INT4OID}
	},
	[PLAN_COMPLETE] = {
		"UPDATE %1$s SET status = 'COMPLETED'"
		" WHERE job_id = $1 AND status = 'PROCESSING' AND NOT is_parent"
		HELD_BY("$2") HELD_IN_ATTEMPT("$3")
		" RETURNING *",
		3, {INT8OID, TEXTOID, INT4OID}
	},
	[PLAN_FAIL] = {
		FAIL_SQL("job_id = $1")
		HELD_BY("$4") HELD_IN_ATTEMPT("$5")
		" RETURNING *",
		5, {INT8OID, TEXTOID, BOOLOID, TEXTOID, INT4OID}
	},
	[PLAN_COMPLETE_MANY] = {
		"UPDATE %1$s SET status = 'COMPLETED'"
		" WHERE job_id = ANY ($1) AND status = 'PROCESSING' AND NOT is_parent"
		HELD_BY("$2")
		" RETURNING job_id",
		2, {INT8ARRAYOID, TEXTOID}
	},
	[PLAN_FAIL_MANY] = {
		FAIL_SQL("job_id = ANY ($1)") HELD_BY("$4") " RETURNING job_id",
		4, {INT8ARRAYOID, TEXTOID, BOOLOID, TEXTOID}
	},
	[PLAN_REAP] = {
		/* the job's lease holder is gone: give the attempt back, or fail */
		"UPDATE %1$s SET"
		" status = CASE WHEN attempts >= max_attempts"
		"  THEN 'FAILED' ELSE 'PENDING' END,"
		" error_details = CASE WHEN attempts >= max_attempts"
		"  THEN format('lease of worker %%s expired on attempt %%s of %%s',"
		"   locked_by, attempts, max_attempts)"
		"  ELSE error_details END"
		" WHERE job_id = ANY (ARRAY("
		"  SELECT job_id FROM %1$s WHERE status = 'PROCESSING'"
		"  AND locked_until < clock_timestamp() AND NOT is_parent"
		"  ORDER BY job_id FOR UPDATE SKIP LOCKED))"
		" AND status = 'PROCESSING' AND locked_until < clock_timestamp()",
		0, {InvalidOid}
	},
	[PLAN_RETRY] = {
		"UPDATE %1$s SET status = 'PENDING', attempts = 0,"
		" run_at = clock_timestamp()"
		" WHERE job_id = $1 AND status = 'FAILED' AND NOT is_parent"
		" RETURNING *",
		1, {INT8OID}
	},
	[PLAN_RETRY_DESCENDANTS] = {
		"UPDATE %1$s SET status = 'PENDING', attempts = 0,"
		" run_at = clock_timestamp()"
		" WHERE job_id = ANY (ARRAY("
		DESCENDANTS_OF_1
		"  AND j.status = 'FAILED' AND NOT j.is_parent"
		"  ORDER BY j.job_id FOR UPDATE))"
		" AND status = 'FAILED'",
		1, {INT8OID}
	},
	[PLAN_CANCEL] = {
		/* a leaf, or a parent that has no children to follow */
		"UPDATE %1$s SET status = 'CANCELLED'"
		" WHERE job_id = $1 AND status IN ('PENDING', 'PROCESSING')"
		" AND (NOT is_parent OR " NO_CHILDREN_YET ")",
		1, {INT8OID}
	},
	[PLAN_CANCEL_DESCENDANTS] = {
		CANCEL_DESCENDANTS_SQL(""), 1, {INT8OID}
	},
	[PLAN_CANCEL_DESCENDANTS_SKIP_LOCKED] = {
		CANCEL_DESCENDANTS_SQL(" SKIP LOCKED"), 1, {INT8OID}
	},
};

/* Raises 22004 when a required argument is NULL. */
void
job_require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

void
job_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
job_spi_finish(void)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

void
job_run_plan(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only,
		 int expected, const char *what)
{
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, 0);

	if (rc != expected)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(rc));
}

/*
 * Reports that job_id does not exist, as a function reports it for the
 * argument it was given: P0002 for a job to act on, 23503 for a
 * parent_job_id.  With tenant isolation on, a job of another tenant is
 * reported with exactly this error too (src/tenant.c), so the two must not
 * differ in anything, detail and hint included.
 */
void
job_report_missing(JobMissing missing, int64 job_id)
{
	if (missing == MISSING_PARENT)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("parent job " INT64_FORMAT " does not exist", job_id)));
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("job " INT64_FORMAT " does not exist", job_id)));
}

/*
 * Reads the job a parent_job_id argument names and checks that it is a
 * parent: 23503 when there is no such job, 22023 when it is not a parent.
 * With lock, the caller takes the right to fold into the parent and then
 * its row lock (FOR NO KEY UPDATE), waiting for both; this serializes
 * callers that are about to change its set of children, and keeps workers
 * that find the parent busy from waiting behind them.  Leaves the row in
 * SPI_tuptable (plan PLAN_PARENT_INFO or PLAN_LOCK_PARENT).
 */
void
job_fetch_parent(Oid nspid, int64 parent_id, bool lock, bool read_only)
{
	Datum		values[1] = {Int64GetDatum(parent_id)};
	bool		isnull;

	if (lock)
		(void) lock_parent_for_fold(parent_id, true);
	job_run_plan(job_plan(lock ? PLAN_LOCK_PARENT : PLAN_PARENT_INFO, nspid),
			 values, NULL, read_only, SPI_OK_SELECT, "reading the parent");
	if (SPI_processed == 0)
		job_report_missing(MISSING_PARENT, parent_id);
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job " INT64_FORMAT " is not a parent job", parent_id),
				 errhint("Create parents with batchjob_create_parent().")));
}

/* Prepared plans, valid for the schema the extension lives in. */
static SPIPlanPtr plans[PLAN_COUNT];
static Oid	plans_nspid = InvalidOid;

/* Column numbers, valid for one relation until its relcache entry changes. */
static JobColumns columns;
static Oid	columns_relid = InvalidOid;

static void
forget_columns(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == columns_relid)
		columns_relid = InvalidOid;
}

/*
 * Called once from _PG_init.  Dropped or altered tables reach us through the
 * relcache callback; plans themselves are revalidated by the plan cache.
 */
void
batchjob_init_caches(void)
{
	CacheRegisterRelcacheCallback(forget_columns, (Datum) 0);
}

/*
 * Maps a status column value to its JobStatus.  The table's CHECK constraint
 * makes an unknown value impossible in a stored row, so one is an internal
 * error here.
 */
JobStatus
job_status_from_datum(Datum d, int64 job_id)
{
	text	   *t = DatumGetTextPP(d);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	int			i;

	for (i = 0; i < JOB_NSTATUS; i++)
	{
		if (strlen(job_status_names[i]) == (size_t) len &&
			memcmp(job_status_names[i], s, len) == 0)
			return (JobStatus) i;
	}
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("job " INT64_FORMAT " has unknown status \"%s\"",
					job_id, text_to_cstring(t)),
			 errhint("A status is one of PENDING, PROCESSING, COMPLETED, FAILED or CANCELLED.")));
	return JOB_PENDING;			/* keep compiler quiet */
}

static AttrNumber
column_number(TupleDesc desc, const char *name)
{
	int			attno = SPI_fnumber(desc, name);

	if (attno <= 0)
		elog(ERROR, "batch_jobs has no column \"%s\"", name);
	return (AttrNumber) attno;
}

/* The column numbers of rel, which must be batch_jobs. */
const JobColumns *
job_columns(Relation rel)
{
	TupleDesc	desc;

	if (columns_relid == RelationGetRelid(rel))
		return &columns;

	desc = RelationGetDescr(rel);
	columns.job_id = column_number(desc, "job_id");
	columns.status = column_number(desc, "status");
	columns.total_records = column_number(desc, "total_records");
	columns.processed_records = column_number(desc, "processed_records");
	columns.success_count = column_number(desc, "success_count");
	columns.error_count = column_number(desc, "error_count");
	columns.error_details = column_number(desc, "error_details");
	columns.is_parent = column_number(desc, "is_parent");
	columns.parent_job_id = column_number(desc, "parent_job_id");
	columns.child[JOB_PENDING] = column_number(desc, "child_pending");
	columns.child[JOB_PROCESSING] = column_number(desc, "child_processing");
	columns.child[JOB_COMPLETED] = column_number(desc, "child_completed");
	columns.child[JOB_FAILED] = column_number(desc, "child_failed");
	columns.child[JOB_CANCELLED] = column_number(desc, "child_cancelled");
	columns.updated_at = column_number(desc, "updated_at");
	columns.started_at = column_number(desc, "started_at");
	columns.completed_at = column_number(desc, "completed_at");
	/* SPI_fnumber's "no such column" is negative: treat it as absent */
	columns.run_at = Max(SPI_fnumber(desc, "run_at"), InvalidAttrNumber);
	columns.locked_by = Max(SPI_fnumber(desc, "locked_by"), InvalidAttrNumber);
	columns.locked_until = Max(SPI_fnumber(desc, "locked_until"),
							   InvalidAttrNumber);
	columns.on_child_failure = Max(SPI_fnumber(desc, "on_child_failure"),
								   InvalidAttrNumber);
	columns_relid = RelationGetRelid(rel);
	return &columns;
}

/*
 * Fills a statement template: %1$s is the jobs table, %2$s the deltas
 * table, %3$s the workers table, %% a percent sign.  (Not psprintf: it refuses a template that
 * names only its second argument.)
 */
static char *
expand_template(const char *template, const char *table, const char *deltas,
				const char *workers)
{
	StringInfoData buf;
	const char *p;

	initStringInfo(&buf);
	for (p = template; *p; p++)
	{
		if (strncmp(p, "%1$s", 4) == 0)
		{
			appendStringInfoString(&buf, table);
			p += 3;
		}
		else if (strncmp(p, "%2$s", 4) == 0)
		{
			appendStringInfoString(&buf, deltas);
			p += 3;
		}
		else if (strncmp(p, "%3$s", 4) == 0)
		{
			appendStringInfoString(&buf, workers);
			p += 3;
		}
		else if (strncmp(p, "%%", 2) == 0)
		{
			appendStringInfoChar(&buf, '%');
			p += 1;
		}
		else
			appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

/*
 * The prepared plan for a statement against nspid's batch_jobs.  Must be
 * called while connected to SPI.  Plans live in SPI's own per-plan contexts
 * (SPI_keepplan); they are dropped if the extension moves to another schema
 * (DROP and CREATE EXTENSION elsewhere), since their text names the schema.
 */
SPIPlanPtr
job_plan(JobPlan which, Oid nspid)
{
	if (plans_nspid != nspid)
	{
		int			i;

		for (i = 0; i < PLAN_COUNT; i++)
		{
			if (plans[i] != NULL)
				SPI_freeplan(plans[i]);
			plans[i] = NULL;
		}
		plans_nspid = nspid;
	}

	if (plans[which] == NULL)
	{
		const PlanSpec *spec = &plan_specs[which];
		char	   *nspname = get_namespace_name(nspid);
		char	   *table;
		char	   *deltas;
		char	   *sql;
		SPIPlanPtr	plan;

		if (nspname == NULL)
			elog(ERROR, "cache lookup failed for namespace %u", nspid);
		table = quote_qualified_identifier(nspname, "batch_jobs");
		deltas = quote_qualified_identifier(nspname, "batch_job_deltas");
		sql = expand_template(spec->sql, table, deltas,
							  quote_qualified_identifier(nspname,
														 "batch_job_workers"));
		/*
		 * Generic plans from the start: the statements look jobs up by key
		 * or through the partial indexes whatever the values, and a custom
		 * plan per call (which the claim's LIMIT $2 and optional tenant
		 * filter would otherwise get) costs more than the statement.
		 */
		plan = SPI_prepare_cursor(sql, spec->nargs, (Oid *) spec->argtypes,
								  CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plans[which] = plan;
		pfree(sql);
	}
	return plans[which];
}

/* The schema of the calling SQL function, which is the extension's. */
Oid
job_function_namespace(FunctionCallInfo fcinfo)
{
	return get_func_namespace(fcinfo->flinfo->fn_oid);
}

/*
 * Whether nspid's batch_jobs has the 1.1 columns.  Between installing a new
 * library and ALTER EXTENSION batchjob UPDATE, the table is still 1.0, and
 * the library keeps serving it with the 1.0 statements.
 */
bool
job_schema_is_v11(Oid nspid)
{
	Oid			relid = get_relname_relid("batch_jobs", nspid);

	return OidIsValid(relid) &&
		get_attnum(relid, "on_child_failure") != InvalidAttrNumber;
}

/* acc += value for parent_id's figures; 22003 rather than wrapping. */
void
job_add_checked(int64 *acc, int64 value, int64 parent_id)
{
	if (pg_add_s64_overflow(*acc, value, acc))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("progress of parent job " INT64_FORMAT " is out of range for bigint",
						parent_id)));
}

/* 22023: parent_job_id names a job that is not a parent. */
void
job_report_not_parent(int64 parent_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("job " INT64_FORMAT " is not a parent job", parent_id),
			 errdetail("A job's parent_job_id must name a job whose is_parent is true.")));
}

int64
child_counts_total(const ChildCounts *counts)
{
	int64		total = 0;
	int			i;

	for (i = 0; i < JOB_NSTATUS; i++)
		total += counts->n[i];
	return total;
}

/*
 * The status rules for a parent (README, "Parent status").  A parent whose
 * children are not all finished is never finished itself, whatever has
 * failed so far: the reference design got that wrong.  A parent that has
 * started (a child got past PENDING once) stays PROCESSING when its
 * children are all PENDING again, after a retry say.  Under fail_fast, a
 * failed child makes the finished parent FAILED rather than a partial
 * success; the rollup cancels the unfinished children to get it there.
 */
JobStatus
derive_parent_status(const ChildCounts *counts, JobStatus current,
					 bool fail_fast, bool started)
{
	int64		total = child_counts_total(counts);

	if (total == 0)
		return current;
	if (counts->n[JOB_PENDING] == total)
		return started ? JOB_PROCESSING : JOB_PENDING;
	if (counts->n[JOB_PENDING] + counts->n[JOB_PROCESSING] > 0)
		return JOB_PROCESSING;
	if (counts->n[JOB_FAILED] == total ||
		(fail_fast && counts->n[JOB_FAILED] > 0))
		return JOB_FAILED;
	if (counts->n[JOB_CANCELLED] == total)
		return JOB_CANCELLED;
	return JOB_COMPLETED;
}

/* error_details of a finished parent: NULL unless some child failed. */
char *
parent_failure_message(const ChildCounts *counts)
{
	if (counts->n[JOB_FAILED] == 0)
		return NULL;
	return psprintf(INT64_FORMAT " out of " INT64_FORMAT " batch jobs failed",
					counts->n[JOB_FAILED], child_counts_total(counts));
}

/*
 * Turns a row SPI produced into the function's declared composite result,
 * allocated in target.  The conversion by position copes with dropped
 * columns, which a SELECT * row lacks but the table's rowtype keeps.
 */
Datum
job_result_datum(FunctionCallInfo fcinfo, HeapTuple tuple, TupleDesc desc,
				 MemoryContext target)
{
	MemoryContext old = MemoryContextSwitchTo(target);
	TupleDesc	outdesc;
	TupleConversionMap *map;
	Datum		result;

	if (get_call_result_type(fcinfo, NULL, &outdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	map = convert_tuples_by_position(desc, outdesc,
									 "batch_jobs row does not match");
	if (map != NULL)
		tuple = execute_attr_map_tuple(tuple, map);
	result = heap_copy_tuple_as_datum(tuple, outdesc);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * Sets up the result of a set-returning function in materialize mode: a
 * tuplestore in per-query memory (spilling to disk past work_mem) and the
 * function's row type.  The caller fills the store.
 */
static Tuplestorestate *
begin_set_result(FunctionCallInfo fcinfo, TupleDesc *outdesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	TupleDesc	desc;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
								  false, work_mem);
	MemoryContextSwitchTo(old);

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = desc;
	*outdesc = desc;
	return store;
}

/*
 * Returns the rows of the last SPI statement (SPI_tuptable) as the result of
 * a set-returning function in materialize mode.  For statements whose row
 * count the caller bounds (a claim of max_jobs); the others stream through
 * job_stream_plan.
 */
void
job_return_tuptable(FunctionCallInfo fcinfo)
{
	TupleDesc	outdesc;
	Tuplestorestate *store = begin_set_result(fcinfo, &outdesc);
	TupleConversionMap *map;
	uint64		i;

	map = convert_tuples_by_position(SPI_tuptable->tupdesc, outdesc,
									 "batch_jobs row does not match");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];

		if (map != NULL)
			tuple = execute_attr_map_tuple(tuple, map);
		tuplestore_puttuple(store, tuple);
	}
}

/*
 * Runs a prepared plan through a cursor and returns its rows as the result
 * of a set-returning function in materialize mode, fetched a thousand at a
 * time into a store that spills to disk, so a million-row result never sits
 * in memory at once.
 */
void
job_stream_plan(FunctionCallInfo fcinfo, SPIPlanPtr plan, Datum *values,
				const char *nulls, bool read_only)
{
	MemoryContext old;
	MemoryContext batch_cxt;
	TupleDesc	outdesc;
	Tuplestorestate *store = begin_set_result(fcinfo, &outdesc);
	TupleConversionMap *map = NULL;
	bool		first = true;
	Portal		portal;

	batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
									  "batchjob result batch",
									  ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open(NULL, plan, values, nulls, read_only);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		if (first)
		{
			map = convert_tuples_by_position(SPI_tuptable->tupdesc, outdesc,
											 "batch_jobs row does not match");
			first = false;
		}
		old = MemoryContextSwitchTo(batch_cxt);
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];

			if (map != NULL)
				tuple = execute_attr_map_tuple(tuple, map);
			tuplestore_puttuple(store, tuple);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch_cxt);
}

/*
 * Cancels every unfinished job below job_id; returns how many changed.
 * With skip_locked, rows another transaction holds are left alone: they are
 * being finished right now, and waiting for them from inside a rollup that
 * holds their parent's lock could deadlock.  Must be connected to SPI.
 */
uint64
cancel_descendants(Oid nspid, int64 job_id, bool skip_locked)
{
	Datum		values[1] = {Int64GetDatum(job_id)};
	int			rc;

	rc = SPI_execute_plan(job_plan(skip_locked ?
								   PLAN_CANCEL_DESCENDANTS_SKIP_LOCKED :
								   PLAN_CANCEL_DESCENDANTS, nspid),
						  values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "cancelling the jobs below job " INT64_FORMAT " failed: %s",
			 job_id, SPI_result_code_string(rc));
	return SPI_processed;
}
