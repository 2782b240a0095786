/*-------------------------------------------------------------------------
 *
 * batchjob.c
 *	  The front door of the batchjob extension: module magic, _PG_init
 *	  (every setting batchjob has), and the SQL-callable functions that
 *	  create, list, count and repair jobs, with their statements.
 *
 * Every function checks its arguments before it changes anything, so a
 * rejected call leaves the table as it was; the errors name the job and the
 * value.  Progress is never computed here: the rollup triggers in
 * src/rollup.c keep parents right for these functions and plain SQL alike.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "batchjob.h"

PG_MODULE_MAGIC;

BJ_FUNCTION_INFO_V1(batchjob_create_parent);
BJ_FUNCTION_INFO_V1(batchjob_create_child);
BJ_FUNCTION_INFO_V1(batchjob_split);
BJ_FUNCTION_INFO_V1(batchjob_children);
BJ_FUNCTION_INFO_V1(batchjob_child_counts);
BJ_FUNCTION_INFO_V1(batchjob_refresh_parent);
BJ_FUNCTION_INFO_V1(batchjob_next_pending);

PGDLLEXPORT void _PG_init(void);

/*
 * The statements of the functions here; the ones that read a parent with
 * what waits for it are src/fold.c's.
 */
#define INSERT_PARENT_SQL(columns, values) \
	"INSERT INTO %1$s" \
	" (status, criteria, created_by, priority, total_records, is_parent" \
	columns ") VALUES ('PENDING', $1, $2, $3, $4, true" values ")" \
	" RETURNING *"

/*
 * Whether parent param is held back (1.2): a follow-up parent that waits,
 * or a parent created below one.  Such a parent is PENDING with run_at
 * 'infinity' (the cheap test, which ends it for every other parent) and
 * the root of its tree still waits for a job in batch_job_followups (a
 * parent a user parked with run_at 'infinity' holds nothing back).  A
 * handful of index probes, up a tree a few levels deep.
 */
#define HELD_PARENT_SQL(param) \
	"SELECT 1 FROM %1$s h WHERE h.job_id = " param \
	" AND h.status = 'PENDING' AND h.run_at = 'infinity'" \
	" AND EXISTS (WITH RECURSIVE up (job_id, parent_job_id) AS (" \
	"  SELECT h.job_id, h.parent_job_id" \
	"  UNION ALL SELECT a.job_id, a.parent_job_id FROM %1$s a" \
	"  JOIN up ON a.job_id = up.parent_job_id)" \
	"  SELECT 1 FROM up JOIN %5$s w ON w.job_id = up.job_id" \
	"  WHERE up.parent_job_id IS NULL AND w.done_at IS NULL)"

/*
 * What a job created below parent param gets as run_at from 1.2 on:
 * 'infinity' while the parent is held back, so that the claim passes it
 * over with no change to its statement; now(), the column's default,
 * otherwise.  batchjob_start_followups() (batchjob--1.1--1.2.sql) lets
 * them go when the follow-up starts, or cancels them.  The caller holds
 * the parent's row lock whenever it is held back, so a start cannot come
 * between this read and the insert.
 */
#define HELD_RUN_AT(param) \
	"CASE WHEN EXISTS (" HELD_PARENT_SQL(param) ")" \
	" THEN 'infinity'::timestamptz ELSE now() END"

static JobStatement insert_parent = {
	.sql = INSERT_PARENT_SQL(", on_child_failure, parent_job_id", ", $5, $6"),
	.nargs = 6,
	.argtypes = {JSONBOID, TEXTOID, INT4OID, INT8OID, TEXTOID, INT8OID}
};

static JobStatement insert_parent_1_2 = {
	.sql = INSERT_PARENT_SQL(", on_child_failure, parent_job_id, run_at",
							 ", $5, $6, " HELD_RUN_AT("$6")),
	.nargs = 6,
	.argtypes = {JSONBOID, TEXTOID, INT4OID, INT8OID, TEXTOID, INT8OID}
};

/* whether parent $1 is held back, so that a nested parent must lock it */
static JobStatement parent_held = {
	.sql = HELD_PARENT_SQL("$1"),
	.nargs = 1, .argtypes = {INT8OID}
};

/* a 1.0 schema has neither on_child_failure nor nested parents */
static JobStatement insert_parent_1_0 = {
	.sql = INSERT_PARENT_SQL("", ""),
	.nargs = 4, .argtypes = {JSONBOID, TEXTOID, INT4OID, INT8OID}
};

static JobStatement batch_exists = {
	.sql = "SELECT 1 FROM %1$s WHERE parent_job_id = $1 AND batch_number = $2",
	.nargs = 2, .argtypes = {INT8OID, INT4OID}
};

#define INSERT_CHILD_SQL(columns, values) \
	"INSERT INTO %1$s" \
	" (status, criteria, created_by, priority, is_parent, parent_job_id," \
	" batch_number, batch_offset, batch_size, total_records" columns ")" \
	" VALUES ('PENDING', $5, $7, $6, false, $1, $2, $3, $4, $4" values ")" \
	" RETURNING *"

#define INSERT_CHILD_ARGTYPES \
	{INT8OID, INT4OID, INT8OID, INT4OID, JSONBOID, INT4OID, TEXTOID}

static JobStatement insert_child = {
	.sql = INSERT_CHILD_SQL("", ""),
	.nargs = 7, .argtypes = INSERT_CHILD_ARGTYPES
};

static JobStatement insert_child_1_2 = {
	.sql = INSERT_CHILD_SQL(", run_at", ", " HELD_RUN_AT("$1")),
	.nargs = 7, .argtypes = INSERT_CHILD_ARGTYPES
};

/* $4 batches of $3 records each, the last one holding the rest */
#define SPLIT_SQL(columns, values) \
	"INSERT INTO %1$s" \
	" (status, criteria, created_by, priority, is_parent, parent_job_id," \
	" batch_number, batch_offset, batch_size, total_records" columns ")" \
	" SELECT 'PENDING', p.criteria, p.created_by, p.priority, false," \
	" p.job_id, n, (n - 1) * $3::int8," \
	" least($3::int8, $2 - (n - 1) * $3::int8)::int4," \
	" least($3::int8, $2 - (n - 1) * $3::int8)" values \
	" FROM %1$s p, generate_series(1, $4) AS n" \
	" WHERE p.job_id = $1 ORDER BY n RETURNING *"

static JobStatement split = {
	.sql = SPLIT_SQL("", ""),
	.nargs = 4, .argtypes = {INT8OID, INT8OID, INT4OID, INT4OID}
};

static JobStatement split_1_2 = {
	.sql = SPLIT_SQL(", run_at", ", " HELD_RUN_AT("$1")),
	.nargs = 4, .argtypes = {INT8OID, INT8OID, INT4OID, INT4OID}
};

static JobStatement set_total = {
	.sql = "UPDATE %1$s SET total_records = $2 WHERE job_id = $1",
	.nargs = 2, .argtypes = {INT8OID, INT8OID}
};

static JobStatement children = {
	.sql = "SELECT * FROM %1$s WHERE parent_job_id = $1"
	" ORDER BY batch_number, job_id",
	.nargs = 1, .argtypes = {INT8OID}
};

/* $2..$10: the recounted figures, in FOLD_NVALUES order */
static JobStatement store_figures = {
	.sql = "UPDATE %1$s SET"
	" child_pending = $2, child_processing = $3, child_completed = $4,"
	" child_failed = $5, child_cancelled = $6, total_records = $7,"
	" processed_records = $8, success_count = $9, error_count = $10"
	" WHERE job_id = $1 RETURNING *",
	.nargs = 10,
	.argtypes = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT8OID, INT8OID, INT8OID}
};

static JobStatement clear_child_counts = {
	.sql = "UPDATE %1$s SET child_pending = 0, child_processing = 0,"
	" child_completed = 0, child_failed = 0, child_cancelled = 0"
	" WHERE job_id = $1 AND " JOB_CHILDREN_SQL("") " <> 0",
	.nargs = 1, .argtypes = {INT8OID}
};

#define NEXT_PENDING_SQL(conditions) \
	"SELECT * FROM %1$s WHERE status = 'PENDING' AND NOT is_parent" \
	conditions " ORDER BY priority DESC, created_at, job_id LIMIT 1"

/* $1: the tenants the caller acts for, NULL for every tenant */
static JobStatement next_pending = {
	.sql = NEXT_PENDING_SQL(" AND run_at <= clock_timestamp()"
							" AND ($1::text[] IS NULL OR created_by = ANY ($1))"),
	.nargs = 1, .argtypes = {TEXTARRAYOID}
};

/* a 1.0 schema has neither schedules nor tenants */
static JobStatement next_pending_1_0 = {
	.sql = NEXT_PENDING_SQL(""), .nargs = 0
};

/*
 * Loading the module: every setting batchjob has, the caches that must
 * hear of schema changes, and the fold's transaction callback.
 */
void
_PG_init(void)
{
	DefineCustomBoolVariable("batchjob.tenant_isolation",
							 "Limits each role that is not a batchjob admin to the jobs of its own tenants.",
							 "A job's tenant is its created_by; workers serve the tenants batchjob_grant gave them.",
							 &batchjob_tenant_isolation,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("batchjob.defer_when_busy",
							 "Leaves rollup differences to the folder while it is busy.",
							 "Off: every rollup updates its parent at once unless another transaction is folding into it.",
							 &batchjob_defer_when_busy,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	BJ_RESERVE_GUC_PREFIX("batchjob");

	batchjob_init_schema_cache();
	batchjob_init_owner_cache();
	batchjob_init_fold();
}

/*
 * batchjob_create_parent(criteria, created_by, priority, total_records
 *						  [, on_child_failure, parent_job_id])
 *
 * A new PENDING parent.  total_records may be NULL (not known yet); it is
 * replaced by the sum over the children once the parent has any.  The last
 * two arguments exist from 1.1 on: a parent may itself be the child of
 * another parent, and says what a failed child does to it.
 */
Datum
batchjob_create_parent(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			nspid = job_function_namespace(fcinfo);
	bool		v11 = job_schema(nspid) >= JOB_SCHEMA_1_1;
	bool		v12 = job_schema(nspid) >= JOB_SCHEMA_1_2;
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Datum		result;
	JobCall		call;

	job_check_nargs(fcinfo, v11 ? 6 : 4);
	job_require_arg(fcinfo, 0, "criteria");
	job_require_arg(fcinfo, 1, "created_by");
	job_require_arg(fcinfo, 2, "priority");
	if (!PG_ARGISNULL(3) && PG_GETARG_INT64(3) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("total_records must not be negative: " INT64_FORMAT,
						PG_GETARG_INT64(3))));
	if (!PG_ARGISNULL(3))
		check_total_records(PG_GETARG_INT64(3));

	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_GETARG_DATUM(2);
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	if (PG_ARGISNULL(3))
		nulls[3] = 'n';

	if (v11)
	{
		char	   *policy;

		job_require_arg(fcinfo, 4, "on_child_failure");
		policy = text_to_cstring(PG_GETARG_TEXT_PP(4));
		if (strcmp(policy, "continue") != 0 && strcmp(policy, "fail_fast") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown on_child_failure \"%s\"", policy),
					 errhint("Use continue or fail_fast.")));
		values[4] = PG_GETARG_DATUM(4);
		values[5] = PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5);
		if (PG_ARGISNULL(5))
			nulls[5] = 'n';
	}

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	if (v11)
		check_created_by(&call, PG_GETARG_TEXT_PP(1));
	check_priority_ceiling(nspid, call.role, PG_GETARG_INT32(2));
	if (v11 && !PG_ARGISNULL(5))
	{
		check_job_tenant(&call, PG_GETARG_INT64(5), MISSING_PARENT);
		job_fetch_parent(nspid, PG_GETARG_INT64(5), false, false, NULL);

		/*
		 * Below a held-back parent, lock it as batchjob_split does, so that
		 * its start cannot come between the look at it and the insert.  A
		 * parent that is not held back never becomes so.
		 */
		if (v12)
		{
			job_run(&parent_held, nspid, &values[5], NULL, false,
					SPI_OK_SELECT, "reading the parent");
			if (SPI_processed > 0)
				job_fetch_parent(nspid, PG_GETARG_INT64(5), true, false,
								 NULL);
		}
	}
	job_run(v12 ? &insert_parent_1_2 : v11 ? &insert_parent :
			&insert_parent_1_0, nspid, values, nulls,
			false, SPI_OK_INSERT_RETURNING, "creating a parent");
	result = job_result_datum(fcinfo, SPI_tuptable->vals[0],
							  SPI_tuptable->tupdesc, caller);
	job_spi_finish();
	job_call_end(&call);
	PG_RETURN_DATUM(result);
}

/*
 * batchjob_create_child(parent_job_id, batch_number, batch_offset,
 *						 batch_size, criteria, priority)
 *
 * A new PENDING child with total_records = batch_size; criteria, priority
 * and created_by come from the parent unless given.  The duplicate check
 * here gives a clear message; the unique constraint still settles a race
 * between two sessions creating the same batch.
 */
Datum
batchjob_create_child(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			nspid = job_function_namespace(fcinfo);
	int64		parent_id;
	int32		batch_number;
	int64		batch_offset;
	int32		batch_size;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	ParentInfo	parent;
	Datum		result;
	JobCall		call;

	job_require_arg(fcinfo, 0, "parent_job_id");
	job_require_arg(fcinfo, 1, "batch_number");
	job_require_arg(fcinfo, 2, "batch_offset");
	job_require_arg(fcinfo, 3, "batch_size");
	parent_id = PG_GETARG_INT64(0);
	batch_number = PG_GETARG_INT32(1);
	batch_offset = PG_GETARG_INT64(2);
	batch_size = PG_GETARG_INT32(3);

	if (batch_size <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive: %d", batch_size)));
	if (batch_offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_offset must not be negative: " INT64_FORMAT,
						batch_offset)));
	if (batch_number < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_number must not be negative: %d", batch_number)));

	/*
	 * Lock the parent as batchjob_split does, so that a split and a new
	 * child cannot interleave (the rollup alone would not hold the lock if
	 * it found the parent busy and deferred).
	 */
	job_call_begin(fcinfo, &call);
	job_spi_connect();
	if (!PG_ARGISNULL(5))
		check_priority_ceiling(nspid, call.role, PG_GETARG_INT32(5));
	check_job_tenant(&call, parent_id, MISSING_PARENT);
	job_fetch_parent(nspid, parent_id, true, false, NULL);
	job_fetch_parent(nspid, parent_id, false, false, &parent);

	values[0] = Int64GetDatum(parent_id);
	values[1] = Int32GetDatum(batch_number);
	values[2] = Int64GetDatum(batch_offset);
	values[3] = Int32GetDatum(batch_size);
	/* criteria, priority, created_by: the argument, else the parent's */
	values[4] = PG_ARGISNULL(4) ? parent.criteria : PG_GETARG_DATUM(4);
	if (PG_ARGISNULL(4) && parent.criteria_null)
		nulls[4] = 'n';
	values[5] = PG_ARGISNULL(5) ? parent.priority : PG_GETARG_DATUM(5);
	values[6] = parent.created_by;
	if (parent.created_by_null)
		nulls[6] = 'n';

	job_run(&batch_exists, nspid, values, NULL, false, SPI_OK_SELECT,
			"checking the batch number");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("parent job " INT64_FORMAT " already has a batch %d",
						parent_id, batch_number)));

	job_run(job_schema(nspid) >= JOB_SCHEMA_1_2 ? &insert_child_1_2 :
			&insert_child, nspid, values, nulls, false,
			SPI_OK_INSERT_RETURNING, "creating a child");
	result = job_result_datum(fcinfo, SPI_tuptable->vals[0],
							  SPI_tuptable->tupdesc, caller);
	job_spi_finish();
	job_call_end(&call);
	PG_RETURN_DATUM(result);
}

/*
 * batchjob_split(parent_job_id, total_records, batch_size)
 *
 * Creates every child of a parent that has none, with one INSERT ... SELECT
 * over generate_series, so the rollup runs once for the whole split.  The
 * parent's row lock makes a concurrent split or a second split wait and
 * then fail cleanly rather than interleave batches.
 */
Datum
batchjob_split(PG_FUNCTION_ARGS)
{
	Oid			nspid = job_function_namespace(fcinfo);
	int64		parent_id;
	int64		total;
	int32		batch_size;
	int64		nbatches;
	Datum		values[4];
	JobCall		call;

	job_require_arg(fcinfo, 0, "parent_job_id");
	job_require_arg(fcinfo, 1, "total_records");
	job_require_arg(fcinfo, 2, "batch_size");
	parent_id = PG_GETARG_INT64(0);
	total = PG_GETARG_INT64(1);
	batch_size = PG_GETARG_INT32(2);

	if (batch_size <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive: %d", batch_size)));
	if (total < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("total_records must not be negative: " INT64_FORMAT,
						total)));
	check_total_records(total);
	/* rounds up; total is at most 2^48, so nothing overflows */
	nbatches = total / batch_size + (total % batch_size != 0);
	check_split_batches(total, batch_size, nbatches);

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	check_job_tenant(&call, parent_id, MISSING_PARENT);
	job_fetch_parent(nspid, parent_id, true, false, NULL);

	values[0] = Int64GetDatum(parent_id);
	if (job_has_children(nspid, parent_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("parent job " INT64_FORMAT " already has children",
						parent_id),
				 errhint("Add batches one by one with batchjob_create_child().")));

	values[1] = Int64GetDatum(total);
	if (nbatches == 0)
	{
		/* no child to carry the total up: record it on the parent itself */
		job_run(&set_total, nspid, values, NULL, false, SPI_OK_UPDATE,
				"setting the parent's total");
	}
	values[2] = Int32GetDatum(batch_size);
	values[3] = Int32GetDatum((int32) nbatches);
	job_stream_plan(fcinfo,
					job_plan(job_schema(nspid) >= JOB_SCHEMA_1_2 ?
							 &split_1_2 : &split, nspid),
					values, NULL, false);
	job_spi_finish();
	job_call_end(&call);
	return (Datum) 0;
}

/* batchjob_children(parent_job_id): the children, by batch_number. */
Datum
batchjob_children(PG_FUNCTION_ARGS)
{
	Oid			nspid = job_function_namespace(fcinfo);
	Datum		values[1];
	JobCall		call;

	job_require_arg(fcinfo, 0, "parent_job_id");
	values[0] = PG_GETARG_DATUM(0);

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	check_job_tenant(&call, PG_GETARG_INT64(0), MISSING_PARENT);
	job_fetch_parent(nspid, PG_GETARG_INT64(0), false, true, NULL);
	job_stream_plan(fcinfo, job_plan(&children, nspid), values, NULL, true);
	job_spi_finish();
	job_call_end(&call);
	return (Datum) 0;
}

/*
 * batchjob_child_counts(parent_job_id): the children by status, read from
 * the counters the rollup keeps on the parent plus the differences waiting
 * for it (src/fold.c, parent_child_counts), so O(1) at any size.
 */
Datum
batchjob_child_counts(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[JOB_NSTATUS + 1];
	bool		nulls[JOB_NSTATUS + 1] = {false};
	int			i;
	HeapTuple	result;
	ChildCounts counts;
	JobCall		call;

	job_require_arg(fcinfo, 0, "parent_job_id");
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	check_job_tenant(&call, PG_GETARG_INT64(0), MISSING_PARENT);
	values[JOB_NSTATUS] = Int64GetDatum(parent_child_counts(call.nspid,
															PG_GETARG_INT64(0),
															&counts));
	for (i = 0; i < JOB_NSTATUS; i++)
		values[i] = Int64GetDatum(counts.n[i]);
	job_spi_finish();
	job_call_end(&call);

	result = heap_form_tuple(desc, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(result));
}

/*
 * batchjob_refresh_parent(parent_job_id)
 *
 * The repair path: recomputes the parent's figures from all its children
 * and stores them; the guard derives the status exactly as it does for the
 * rollup.  The parent's row is locked before the children are read, and
 * every child change takes that lock in its rollup, so a change either
 * committed before the read (and is counted) or applies its difference on
 * top of the stored result afterwards; none is lost or counted twice.
 * Differences waiting in batch_job_deltas are dropped in the same snapshot
 * as the children are summed, since the sums already include them.  NULL
 * when the parent has no children (its child counters are zeroed if they
 * say otherwise; its own figures are left alone).
 */
Datum
batchjob_refresh_parent(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			nspid = job_function_namespace(fcinfo);
	Datum		values[1 + FOLD_NVALUES];
	int64		figures[FOLD_NVALUES];
	int			i;
	Datum		result;
	JobCall		call;

	job_require_arg(fcinfo, 0, "parent_job_id");
	values[0] = PG_GETARG_DATUM(0);

	job_call_invoker(fcinfo, &call);
	job_spi_connect();
	check_job_tenant(&call, PG_GETARG_INT64(0), MISSING_PARENT);
	job_fetch_parent(nspid, PG_GETARG_INT64(0), true, false, NULL);

	if (recount_children(nspid, PG_GETARG_INT64(0), figures) == 0)
	{
		/* nothing to sum; only counters claiming children can be wrong */
		job_run(&clear_child_counts, nspid, values, NULL, false,
				SPI_OK_UPDATE, "clearing the child counters");
		job_spi_finish();
		PG_RETURN_NULL();
	}
	for (i = 0; i < FOLD_NVALUES; i++)
		values[1 + i] = Int64GetDatum(figures[i]);

	job_run(&store_figures, nspid, values, NULL, false,
			SPI_OK_UPDATE_RETURNING, "storing the parent's figures");
	result = job_result_datum(fcinfo, SPI_tuptable->vals[0],
							  SPI_tuptable->tupdesc, caller);
	job_spi_finish();
	PG_RETURN_DATUM(result);
}

/*
 * batchjob_next_pending(): the job a worker would take next, without
 * taking it (from 1.1 on, one whose run_at has come).  Reads the partial
 * index of PENDING non-parents only.
 */
Datum
batchjob_next_pending(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		result;

	Oid			nspid = job_function_namespace(fcinfo);
	Datum		values[1];
	char		nulls[1] = {' '};
	bool		unrestricted;
	JobCall		call;

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	if (job_schema(nspid) >= JOB_SCHEMA_1_1)
	{
		/* only the jobs of the tenants the caller acts for */
		values[0] = tenant_scope_datum(nspid, call.role, &unrestricted);
		if (unrestricted)
			nulls[0] = 'n';
		job_run(&next_pending, nspid, values, nulls, true, SPI_OK_SELECT,
				"finding the next job");
	}
	else
		job_run(&next_pending_1_0, nspid, NULL, NULL, true, SPI_OK_SELECT,
				"finding the next job");
	if (SPI_processed == 0)
	{
		job_spi_finish();
		job_call_end(&call);
		PG_RETURN_NULL();
	}
	result = job_result_datum(fcinfo, SPI_tuptable->vals[0],
							  SPI_tuptable->tupdesc, caller);
	job_spi_finish();
	job_call_end(&call);
	PG_RETURN_DATUM(result);
}
