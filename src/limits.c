/*-------------------------------------------------------------------------
 *
 * src/limits.c
 *	  The bounds on what one call may ask for (1.2): how many jobs a claim
 *	  takes, how many children a split creates, how many records a job may
 *	  say it has, and how high a submitter may set a job's priority.
 *
 * Each bound keeps one caller from costing the others: a claim holds every
 * row it takes in memory, a split creates its children in one statement,
 * a job's total is summed into every parent above it, and priority orders
 * the queue that shared workers serve.  Every check runs before the call
 * changes anything, and refuses with 22023 and a message that names the
 * argument and the bound.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "batchjob.h"

/* Columns of the ceiling statement in check_priority_ceiling. */
#define Anum_ceiling_max_priority	1

/* 22023 unless max_jobs is between 1 and BJ_CLAIM_MAX_JOBS. */
void
check_claim_max_jobs(int32 max_jobs)
{
	if (max_jobs < 1 || max_jobs > BJ_CLAIM_MAX_JOBS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_jobs must be between 1 and %d: %d",
						BJ_CLAIM_MAX_JOBS, max_jobs),
				 errhint("Claim again for more jobs.")));
}

/*
 * 22023 unless total_records is at most BJ_TOTAL_RECORDS_MAX.  A job's total
 * is added into the sums of every parent above it; with each job below
 * 2^48, a parent's sum cannot leave bigint's range before it has 32,768
 * such children (and folds still check every sum, 22003).
 */
void
check_total_records(int64 total_records)
{
	if (total_records > BJ_TOTAL_RECORDS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("total_records must be at most " INT64_FORMAT ": " INT64_FORMAT,
						BJ_TOTAL_RECORDS_MAX, total_records),
				 errdetail("A job's total is summed into every parent above it, so one job may count at most 2^48 records.")));
}

/*
 * 22023 when splitting total records into batches of batch_size needs more
 * than BJ_SPLIT_MAX_BATCHES children: one split is one statement, whose
 * rows the rollup and the caller both hold.
 */
void
check_split_batches(int64 total, int32 batch_size, int64 nbatches)
{
	if (nbatches > BJ_SPLIT_MAX_BATCHES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("splitting " INT64_FORMAT " records into batches of %d needs " INT64_FORMAT " batches, more than the %d one split may create",
						total, batch_size, nbatches, BJ_SPLIT_MAX_BATCHES),
				 errhint("Use a larger batch_size, or nest parents and split each.")));
}

/*
 * 22023 when roleid may not give a job this priority.  Admins (and
 * superusers) set any priority; any other role at most the ceiling
 * batchjob_grant(role, 'submitter', max_priority => n) stored for it in
 * batch_job_submitters, 0 (the default priority) when none was stored.  A
 * schema still at 1.1 has no ceilings: nothing is checked until it is
 * updated.  Lower priorities are always allowed; they only put the role's
 * own jobs behind others.  Must be connected to SPI.
 */
void
check_priority_ceiling(Oid nspid, Oid roleid, int32 priority)
{
	int32		ceiling = 0;
	Datum		values[1];
	Oid			types[1] = {OIDOID};
	char	   *sql;
	int			rc;

	if (priority <= 0 || job_schema(nspid) < JOB_SCHEMA_1_2 ||
		role_is_job_admin(nspid, roleid))
		return;

	sql = psprintf("SELECT max_priority FROM %s"
				   " WHERE submitter OPERATOR(pg_catalog.=) $1",
				   quote_qualified_identifier(get_namespace_name(nspid),
											  "batch_job_submitters"));
	values[0] = ObjectIdGetDatum(roleid);
	rc = SPI_execute_with_args(sql, 1, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed reading a priority ceiling: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc,
									  Anum_ceiling_max_priority, &isnull);

		if (!isnull)
			ceiling = DatumGetInt32(d);
	}
	if (priority > ceiling)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("priority must be at most %d for role \"%s\": %d",
						ceiling, GetUserNameFromId(roleid, false), priority),
				 errdetail("A role that is not a batchjob admin may not put its jobs ahead of other tenants' beyond the ceiling it was given."),
				 errhint("An admin raises the ceiling with batchjob_grant(role, 'submitter', max_priority => n).")));
}
