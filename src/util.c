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
#include "funcapi.h"
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
 * The statements, with %1$s standing for the schema-qualified table.  Every
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

static const PlanSpec plan_specs[PLAN_COUNT] = {
	[PLAN_ROLLUP_APPLY] = {
		/*
		 * A parent without children keeps figures of its own (a total given
		 * at creation); its first children replace them rather than add to
		 * them, which is also what batchjob_refresh_parent computes.
		 */
		"UPDATE %1$s SET"
		" child_pending = child_pending + $2,"
		" child_processing = child_processing + $3,"
		" child_completed = child_completed + $4,"
		" child_failed = child_failed + $5,"
		" child_cancelled = child_cancelled + $6,"
		" total_records = CASE WHEN " NO_CHILDREN_YET
		" THEN 0 ELSE coalesce(total_records, 0) END + $7,"
		" processed_records = CASE WHEN " NO_CHILDREN_YET
		" THEN 0 ELSE processed_records END + $8,"
		" success_count = CASE WHEN " NO_CHILDREN_YET
		" THEN 0 ELSE success_count END + $9,"
		" error_count = CASE WHEN " NO_CHILDREN_YET
		" THEN 0 ELSE error_count END + $10"
		" WHERE job_id = $1 RETURNING is_parent",
		10,
		{INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
		INT8OID, INT8OID, INT8OID, INT8OID}
	},
	[PLAN_INSERT_PARENT] = {
		"INSERT INTO %1$s"
		" (status, criteria, created_by, priority, total_records, is_parent)"
		" VALUES ('PENDING', $1, $2, $3, $4, true) RETURNING *",
		4, {JSONBOID, TEXTOID, INT4OID, INT8OID}
	},
	[PLAN_PARENT_INFO] = {
		"SELECT is_parent, criteria, priority, created_by,"
		" child_pending, child_processing, child_completed, child_failed,"
		" child_cancelled FROM %1$s WHERE job_id = $1",
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
		"SELECT count(*) FILTER (WHERE status = 'PENDING'),"
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
	[PLAN_NEXT_PENDING] = {
		"SELECT * FROM %1$s WHERE status = 'PENDING' AND NOT is_parent"
		" ORDER BY priority DESC, created_at, job_id LIMIT 1",
		0, {InvalidOid}
	},
};

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
	columns_relid = RelationGetRelid(rel);
	return &columns;
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
		char	   *sql;
		SPIPlanPtr	plan;

		if (nspname == NULL)
			elog(ERROR, "cache lookup failed for namespace %u", nspid);
		table = quote_qualified_identifier(nspname, "batch_jobs");
		sql = psprintf(spec->sql, table);
		plan = SPI_prepare(sql, spec->nargs, (Oid *) spec->argtypes);
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
 * failed so far: the reference design got that wrong.
 */
JobStatus
derive_parent_status(const ChildCounts *counts, JobStatus current)
{
	int64		total = child_counts_total(counts);

	if (total == 0)
		return current;
	if (counts->n[JOB_PENDING] == total)
		return JOB_PENDING;
	if (counts->n[JOB_PENDING] + counts->n[JOB_PROCESSING] > 0)
		return JOB_PROCESSING;
	if (counts->n[JOB_FAILED] == total)
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
 * Runs a prepared plan through a cursor and returns its rows as the result
 * of a set-returning function in materialize mode.  Rows go to a tuplestore
 * in per-query memory that spills to disk past work_mem, and are fetched a
 * thousand at a time, so a million-row result never sits in memory at once.
 */
void
job_stream_plan(FunctionCallInfo fcinfo, SPIPlanPtr plan, Datum *values,
				const char *nulls, bool read_only)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	MemoryContext batch_cxt;
	TupleDesc	outdesc;
	Tuplestorestate *store;
	TupleConversionMap *map = NULL;
	bool		first = true;
	Portal		portal;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &outdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	outdesc = CreateTupleDescCopy(outdesc);
	store = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
								  false, work_mem);
	MemoryContextSwitchTo(old);

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

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = outdesc;
}
