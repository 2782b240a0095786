/*-------------------------------------------------------------------------
 *
 * src/spi_plans.c
 *	  Running the parts' statements through SPI: preparing each once per
 *	  backend and keeping the plan, checking result codes, and handing the
 *	  rows back as a function's result (one row, or a set that streams).
 *	  The statements themselves live in the files that run them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupconvert.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "batchjob.h"

/*
 * Fills a statement template: %1$s is the jobs table, %2$s the deltas
 * table, %3$s the workers table, %4$s the figures view, %5$s the
 * follow-ups table (1.2), %% a percent sign.  (Not psprintf: it refuses a
 * template that names only its second argument.)
 */
static char *
expand_template(const char *template, const char *table, const char *deltas,
				const char *workers, const char *figures, const char *followups)
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
		else if (strncmp(p, "%4$s", 4) == 0)
		{
			appendStringInfoString(&buf, figures);
			p += 3;
		}
		else if (strncmp(p, "%5$s", 4) == 0)
		{
			appendStringInfoString(&buf, followups);
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
 * The prepared plan for a statement against nspid's tables.  Must be
 * called while connected to SPI.  Plans live in SPI's own per-plan contexts
 * (SPI_keepplan); one is dropped if the extension moves to another schema
 * (DROP and CREATE EXTENSION elsewhere), since its text names the schema.
 */
SPIPlanPtr
job_plan(JobStatement *stmt, Oid nspid)
{
	if (stmt->plan != NULL && stmt->nspid != nspid)
	{
		SPI_freeplan(stmt->plan);
		stmt->plan = NULL;
	}

	if (stmt->plan == NULL)
	{
		char	   *nspname = get_namespace_name(nspid);
		char	   *sql;
		SPIPlanPtr	plan;

		if (nspname == NULL)
			elog(ERROR, "cache lookup failed for namespace %u", nspid);
		sql = expand_template(stmt->sql,
							  quote_qualified_identifier(nspname, "batch_jobs"),
							  quote_qualified_identifier(nspname,
														 "batch_job_deltas"),
							  quote_qualified_identifier(nspname,
														 "batch_job_workers"),
							  quote_qualified_identifier(nspname,
														 "batch_job_figures"),
							  quote_qualified_identifier(nspname,
														 "batch_job_followups"));

		/*
		 * Generic plans from the start: the statements look jobs up by key
		 * or through the partial indexes whatever the values, and a custom
		 * plan per call (which the claim's LIMIT $2 and optional tenant
		 * filter would otherwise get) costs more than the statement.
		 */
		plan = SPI_prepare_cursor(sql, stmt->nargs, stmt->argtypes,
								  CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		stmt->plan = plan;
		stmt->nspid = nspid;
		pfree(sql);
	}
	return stmt->plan;
}

/* SPI_connect, or an internal error: every caller needs SPI to go on. */
void
job_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * Pins search_path as a SET clause would, for code that runs statements
 * without one: the trigger functions, which carry none because a SET
 * clause saves and restores the settings (a walk over every setting) at
 * each call, and the row guard and the rollup run for every write.  Pin
 * before the first statement is prepared or run, unpin with the level
 * returned once the last has; an error unpins on its own, as the
 * transaction or subtransaction ends.
 */
int
job_pin_search_path(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return level;
}

void
job_unpin_search_path(int level)
{
	AtEOXact_GUC(true, level);
}

/* SPI_finish, or an internal error, on every path that connected. */
void
job_spi_finish(void)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

/*
 * Runs a prepared plan and insists on the exact SPI_OK_* code the
 * statement gives; what names the step for the internal error otherwise.
 */
void
job_run_plan(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only,
			 int expected, const char *what)
{
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, 0);

	if (rc != expected)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(rc));
}

/* job_run_plan for a statement, prepared for nspid if need be. */
void
job_run(JobStatement *stmt, Oid nspid, Datum *values, const char *nulls,
		bool read_only, int expected, const char *what)
{
	job_run_plan(job_plan(stmt, nspid), values, nulls, read_only, expected,
				 what);
}

/*
 * The function's composite result type.  A table's row type (batch_jobs,
 * the usual one) comes from the type cache as it is, *cached set: the
 * caller releases it with ReleaseTupleDesc.  get_call_result_type would
 * copy it with the table's defaults and constraints, a few KB of node
 * strings for batch_jobs, at every call of the worker functions.  Other
 * results (OUT parameters) are built by get_call_result_type.
 */
static TupleDesc
result_row_type(FunctionCallInfo fcinfo, bool *cached)
{
	Oid			typid = get_fn_expr_rettype(fcinfo->flinfo);
	TupleDesc	desc;

	*cached = OidIsValid(typid) && typid != RECORDOID &&
		type_is_rowtype(typid);
	if (*cached)
		return lookup_rowtype_tupdesc(typid, -1);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	return desc;
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
	bool		cached;
	TupleDesc	outdesc = result_row_type(fcinfo, &cached);
	TupleConversionMap *map;
	Datum		result;

	map = convert_tuples_by_position(desc, outdesc,
									 "batch_jobs row does not match");
	if (map != NULL)
		tuple = execute_attr_map_tuple(tuple, map);
	result = heap_copy_tuple_as_datum(tuple, outdesc);
	if (cached)
		ReleaseTupleDesc(outdesc);
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
	TupleDesc	type;
	TupleDesc	desc;
	bool		cached;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	type = result_row_type(fcinfo, &cached);
	desc = CreateTupleDescCopy(type);
	if (cached)
		ReleaseTupleDesc(type);
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
