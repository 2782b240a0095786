/*-------------------------------------------------------------------------
 *
 * src/errors.c
 *	  The errors several parts of batchjob raise, worded once, so that the
 *	  same condition gets the same SQLSTATE and message from every function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"

#include "batchjob.h"

/* Raises 22004 when a required argument is NULL. */
void
job_require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
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
 * 22023: parent_job_id names a job that is not a parent.  Raised where a
 * child's change reaches a job that cannot take it (a fold, a deferral),
 * which only plain SQL can cause.
 */
void
job_report_not_parent(int64 parent_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("job " INT64_FORMAT " is not a parent job", parent_id),
			 errdetail("A job's parent_job_id must name a job whose is_parent is true.")));
}

/*
 * acc += value for parent_id's figures; 22003 rather than wrapping, so that
 * a parent's sums can never silently turn negative.
 */
void
job_add_checked(int64 *acc, int64 value, int64 parent_id)
{
	if (pg_add_s64_overflow(*acc, value, acc))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("progress of parent job " INT64_FORMAT " is out of range for bigint",
						parent_id)));
}
