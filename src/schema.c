/*-------------------------------------------------------------------------
 *
 * src/schema.c
 *	  Where the C code meets the install and upgrade scripts: which version
 *	  of the extension's schema a database has, and the column numbers of
 *	  batch_jobs.
 *
 * The version story.  One library serves every schema version a database
 * may still have: a new batchjob.so is installed before ALTER EXTENSION
 * batchjob UPDATE runs, and it must keep serving the old schema until
 * then.  The released scripts bind the same C symbols to every version's
 * functions (batchjob_create_parent has four arguments in 1.0, six from
 * 1.1 on), so versioned entry points in the manner of pg_stat_statements
 * cannot tell them apart.  Instead the library is written for the current
 * schema, and asks one question where an older one differs:
 * job_schema(nspid), read from the schema itself and cached until its
 * tables change.  The answer decides everything that differs:
 *
 *	1.0	no lease, schedule or fail_fast columns: statements without them
 *		(the *_1_0 statements beside the current ones); the functions run
 *		as their caller.
 *	1.1	the functions are SECURITY DEFINER, so the acting role is the
 *		outer user (src/tenant.c); no attempt argument on the worker
 *		functions and no worker argument on the array forms of complete
 *		and fail (src/lifecycle.c); no priority ceilings (src/limits.c).
 *	1.2	the current schema: every function SECURITY INVOKER, switching to
 *		the extension's owner itself; batch_job_deltas.deferred_at.
 *
 * A function never counts its arguments or reads its own catalog row to
 * learn the version; job_check_nargs only asserts that the signature the
 * scripts gave it is the one the version implies.  The triggers read the
 * columns they find (job_columns), which during an upgrade script may be
 * a version in between.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "batchjob.h"

/* The version of one schema's tables, until their relcache entries change. */
static Oid	schema_nspid = InvalidOid;
static Oid	schema_jobs_relid = InvalidOid;
static Oid	schema_deltas_relid = InvalidOid;
static JobSchema schema_version;

/* Column numbers, valid for one relation until its relcache entry changes. */
static JobColumns columns;
static Oid	columns_relid = InvalidOid;

/*
 * Relcache callback: an ALTER TABLE in an upgrade script, or a dropped
 * extension, makes what was cached about that table stale.
 */
static void
forget_schema(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == columns_relid)
		columns_relid = InvalidOid;
	if (relid == InvalidOid || relid == schema_jobs_relid ||
		relid == schema_deltas_relid)
		schema_nspid = InvalidOid;
}

/*
 * Called once from _PG_init.  Dropped or altered tables reach us through the
 * relcache callback; plans themselves are revalidated by the plan cache.
 */
void
batchjob_init_schema_cache(void)
{
	CacheRegisterRelcacheCallback(forget_schema, (Datum) 0);
}

/*
 * The version of the schema nspid (see the file header): 1.1 added
 * batch_jobs.on_child_failure, 1.2 batch_job_deltas.deferred_at, each in
 * the first statement of its script that a later statement could depend on.
 */
JobSchema
job_schema(Oid nspid)
{
	if (schema_nspid != nspid)
	{
		Oid			jobs = get_relname_relid("batch_jobs", nspid);
		Oid			deltas = get_relname_relid("batch_job_deltas", nspid);

		schema_version = JOB_SCHEMA_1_0;
		if (OidIsValid(jobs) &&
			get_attnum(jobs, "on_child_failure") != InvalidAttrNumber)
			schema_version = JOB_SCHEMA_1_1;
		if (schema_version == JOB_SCHEMA_1_1 && OidIsValid(deltas) &&
			get_attnum(deltas, "deferred_at") != InvalidAttrNumber)
			schema_version = JOB_SCHEMA_1_2;
		schema_jobs_relid = jobs;
		schema_deltas_relid = deltas;
		/* no batch_jobs, no relcache entry to tell us it was created */
		schema_nspid = OidIsValid(jobs) ? nspid : InvalidOid;
	}
	return schema_version;
}

/*
 * Internal error unless the calling SQL function has nargs arguments: the
 * signature the schema's version implies.  Can only fail if the functions
 * were changed by hand; it keeps an argument the signature lacks from
 * being read.
 */
void
job_check_nargs(FunctionCallInfo fcinfo, int nargs)
{
	if (PG_NARGS() != nargs)
		elog(ERROR, "function %u has %d arguments, not the %d its schema version gives it",
			 fcinfo->flinfo->fn_oid, (int) PG_NARGS(), nargs);
}

/* The schema of the calling SQL function, which is the extension's. */
Oid
job_function_namespace(FunctionCallInfo fcinfo)
{
	return get_func_namespace(fcinfo->flinfo->fn_oid);
}

/* A column batch_jobs must have: internal error when it is missing. */
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
