/*-------------------------------------------------------------------------
 *
 * src/followups.c
 *	  Follow-up jobs (1.2): a job (plain, or a parent) that waits for other
 *	  jobs to finish.
 *
 * Design.  A waiting follow-up is an ordinary PENDING job whose run_at is
 * 'infinity', so the claim (run_at <= now), batchjob_next_pending and the
 * batchjob_jobs_available notice pass it over with no change to their
 * statements or their cost.  What it waits for is one row per waited-for
 * job in batch_job_followups; the waited-for job gets has_followers = true.
 * When such a job finishes, an AFTER UPDATE row trigger whose WHEN clause
 * reads has_followers and the status from the new row (so queues without
 * follow-ups never queue an event) calls batchjob_start_followups(), in the
 * transaction that finished the job; the rule of what starts and what is
 * cancelled is written there, once, in SQL.
 *
 * A follow-up parent may be split while it waits: batchjob.c gives what
 * it creates below a waiting parent (PENDING, run_at 'infinity') run_at
 * 'infinity' too, and batchjob_start_followups() lets them go or cancels
 * them with the parent.
 *
 * This file creates follow-ups: it checks the caller as the other creating
 * functions do (tenant, priority ceiling, bounds), then, as the extension's
 * owner, locks the waited-for jobs and records the waits.
 *
 * Locking.  The waited-for jobs are locked (FOR NO KEY UPDATE, in job_id
 * order, after the right to fold into each, as every path that writes a
 * parent row does), so a job cannot finish between the look at its status
 * and the record of the wait: a finish that committed first is seen and
 * acted on here; one that comes later waits for this transaction and then
 * finds has_followers set.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "batchjob.h"

BJ_FUNCTION_INFO_V1(batchjob_create_followup);

/* Columns of FOLLOWUP_LOCK_AFTER's rows. */
#define Anum_followup_after_job_id	1
#define Anum_followup_after_finished	2

/*
 * The statements this file runs, each with the schema's name put in (the
 * values always go as parameters).  Not prepared: creating a follow-up is
 * not a hot path.
 */
static const char *const FOLLOWUP_LOCK_AFTER =
"SELECT j.job_id, j.status = ANY ('{COMPLETED,FAILED,CANCELLED}'::text[])"
" FROM %1$s.batch_jobs j WHERE j.job_id = ANY ($1)"
" ORDER BY j.job_id FOR NO KEY UPDATE";

static const char *const FOLLOWUP_INSERT_JOB =
"INSERT INTO %1$s.batch_jobs"
" (status, criteria, created_by, priority, is_parent, total_records, run_at)"
" VALUES ('PENDING', $1, $2, $3, $5, $4, 'infinity') RETURNING job_id";

#define Anum_followup_insert_job_id	1

static const char *const FOLLOWUP_INSERT_WAITS =
"INSERT INTO %1$s.batch_job_followups (job_id, after_job_id, after)"
" SELECT $1, a, $3 FROM unnest($2::int8[]) AS a";

static const char *const FOLLOWUP_MARK_AFTER =
"UPDATE %1$s.batch_jobs SET has_followers = true"
" WHERE job_id = ANY ($1) AND NOT has_followers";

static const char *const FOLLOWUP_START =
"SELECT %1$s.batchjob_start_followups(a) FROM unnest($1::int8[]) AS a";

static const char *const FOLLOWUP_RESULT =
"SELECT * FROM %1$s.batch_jobs WHERE job_id = $1";

/*
 * Runs one of the statements above against nspid's tables, raising an
 * internal error unless SPI returns the expected code.
 */
static void
followup_run(Oid nspid, const char *sql, int nargs, Oid *types,
			 Datum *values, int expected, const char *what)
{
	char	   *query = psprintf(sql,
								 quote_identifier(get_namespace_name(nspid)));
	int			rc;

	rc = SPI_execute_with_args(query, nargs, types, values, NULL, false, 0);
	if (rc != expected)
		elog(ERROR, "%s failed: %s", what, SPI_result_code_string(rc));
	pfree(query);
}

/* qsort order for job ids: ascending, the order every lock path keeps. */
static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* ids as a bigint[] Datum, to pass as a statement's parameter. */
static Datum
int8_array(const int64 *ids, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * batchjob_create_followup(after_job_ids, criteria, created_by, after,
 *							priority, total_records, is_parent)
 *
 * A new plain job (with is_parent, a parent) that starts when every job
 * of after_job_ids has finished (after 'complete'), or only if each ended
 * COMPLETED with no failed child (after 'success'; otherwise it is
 * CANCELLED, and so is everything below it).  Jobs of the list that have
 * finished already count at once.
 */
Datum
batchjob_create_followup(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			nspid = job_function_namespace(fcinfo);
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	int64	   *ids;
	int64	   *finished;
	int64	   *waiting;
	int			nids = 0;
	int			nfinished = 0;
	int			nwaiting = 0;
	char	   *after;
	int			i;
	uint64		row;
	int64		job_id;
	bool		isnull;
	Datum		result;
	JobCall		call;
	Oid			types[5];
	Datum		values[5];

	job_require_arg(fcinfo, 0, "after_job_ids");
	job_require_arg(fcinfo, 1, "criteria");
	job_require_arg(fcinfo, 2, "created_by");
	job_require_arg(fcinfo, 3, "after");
	job_require_arg(fcinfo, 4, "priority");
	job_require_arg(fcinfo, 6, "is_parent");

	after = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(after, "success") != 0 && strcmp(after, "complete") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown after \"%s\"", after),
				 errhint("Use success or complete.")));
	if (!PG_ARGISNULL(5) && PG_GETARG_INT64(5) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("total_records must not be negative: " INT64_FORMAT,
						PG_GETARG_INT64(5))));
	if (!PG_ARGISNULL(5))
		check_total_records(PG_GETARG_INT64(5));

	arr = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(arr, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &elem_nulls, &nelems);
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after_job_ids must name at least one job")));
	ids = palloc(sizeof(int64) * nelems);
	for (i = 0; i < nelems; i++)
	{
		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("after_job_ids must not contain NULL")));
		ids[i] = DatumGetInt64(elems[i]);
	}
	qsort(ids, nelems, sizeof(int64), compare_int64);
	for (i = 0; i < nelems; i++)
		if (nids == 0 || ids[nids - 1] != ids[i])
			ids[nids++] = ids[i];

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	check_created_by(&call, PG_GETARG_TEXT_PP(2));
	check_priority_ceiling(nspid, call.role, PG_GETARG_INT32(4));
	for (i = 0; i < nids; i++)
		check_job_tenant(&call, ids[i], MISSING_JOB);

	/*
	 * The right to fold first, then the rows, in job_id order: the order
	 * every path that writes a parent row keeps (src/fold.c).
	 */
	for (i = 0; i < nids; i++)
		(void) lock_parent_for_fold(ids[i], true);
	types[0] = INT8ARRAYOID;
	values[0] = int8_array(ids, nids);
	followup_run(nspid, FOLLOWUP_LOCK_AFTER, 1, types, values,
				 SPI_OK_SELECT, "locking the jobs waited for");
	finished = palloc(sizeof(int64) * nids);
	waiting = palloc(sizeof(int64) * nids);
	for (row = 0, i = 0; i < nids; i++)
	{
		if (row >= SPI_processed ||
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row],
										SPI_tuptable->tupdesc,
										Anum_followup_after_job_id,
										&isnull)) != ids[i])
			job_report_missing(MISSING_JOB, ids[i]);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[row],
									   SPI_tuptable->tupdesc,
									   Anum_followup_after_finished,
									   &isnull)))
			finished[nfinished++] = ids[i];
		else
			waiting[nwaiting++] = ids[i];
		row++;
	}

	types[0] = JSONBOID;
	values[0] = PG_GETARG_DATUM(1);
	types[1] = TEXTOID;
	values[1] = PG_GETARG_DATUM(2);
	types[2] = INT4OID;
	values[2] = PG_GETARG_DATUM(4);
	types[3] = INT8OID;
	values[3] = PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5);
	types[4] = BOOLOID;
	values[4] = PG_GETARG_DATUM(6);
	{
		char	   *query = psprintf(FOLLOWUP_INSERT_JOB,
									 quote_identifier(get_namespace_name(nspid)));
		char		nulls[5] = {' ', ' ', ' ', PG_ARGISNULL(5) ? 'n' : ' ', ' '};
		int			rc;

		rc = SPI_execute_with_args(query, 5, types, values, nulls, false, 0);
		if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
			elog(ERROR, "creating a follow-up failed: %s",
				 SPI_result_code_string(rc));
		job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc,
											 Anum_followup_insert_job_id,
											 &isnull));
	}

	types[0] = INT8OID;
	values[0] = Int64GetDatum(job_id);
	types[1] = INT8ARRAYOID;
	values[1] = int8_array(ids, nids);
	types[2] = TEXTOID;
	values[2] = PG_GETARG_DATUM(3);
	followup_run(nspid, FOLLOWUP_INSERT_WAITS, 3, types, values,
				 SPI_OK_INSERT, "recording what a follow-up waits for");
	if (nwaiting > 0)
	{
		types[0] = INT8ARRAYOID;
		values[0] = int8_array(waiting, nwaiting);
		followup_run(nspid, FOLLOWUP_MARK_AFTER, 1, types, values,
					 SPI_OK_UPDATE, "marking the jobs waited for");
	}
	if (nfinished > 0)
	{
		types[0] = INT8ARRAYOID;
		values[0] = int8_array(finished, nfinished);
		followup_run(nspid, FOLLOWUP_START, 1, types, values,
					 SPI_OK_SELECT, "starting a follow-up");
	}

	types[0] = INT8OID;
	values[0] = Int64GetDatum(job_id);
	followup_run(nspid, FOLLOWUP_RESULT, 1, types, values, SPI_OK_SELECT,
				 "reading the follow-up");
	result = job_result_datum(fcinfo, SPI_tuptable->vals[0],
							  SPI_tuptable->tupdesc, caller);
	job_spi_finish();
	job_call_end(&call);
	PG_RETURN_DATUM(result);
}
