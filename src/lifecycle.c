/*-------------------------------------------------------------------------
 *
 * src/lifecycle.c
 *	  The worker lifecycle (1.1): claim under a lease, heartbeat, progress,
 *	  complete, fail with retry and backoff, reap expired leases, manual
 *	  retry and cancellation.
 *
 * Each call is one statement whose WHERE clause states the transition it
 * makes (a job is completed only while it is PROCESSING, say), so that two
 * sessions racing on one job cannot both succeed: the loser's UPDATE finds
 * the row changed and matches nothing.  Only then is the job read again, to
 * say why nothing happened.  Progress reaches parents through the rollup
 * triggers, per statement, as for any other change.
 *
 * A claim identifies its holder (1.2): the worker name and the attempt
 * batchjob_claim returned.  A worker call that names them changes the job
 * only while that claim is current, so a worker whose lease expired and
 * whose job was reaped and claimed again (by another worker, or by itself
 * after a restart) cannot touch the new attempt.  A role that is not an
 * admin must name its worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "batchjob.h"

BJ_FUNCTION_INFO_V1(batchjob_claim);
BJ_FUNCTION_INFO_V1(batchjob_heartbeat);
BJ_FUNCTION_INFO_V1(batchjob_progress);
BJ_FUNCTION_INFO_V1(batchjob_complete);
BJ_FUNCTION_INFO_V1(batchjob_fail);
BJ_FUNCTION_INFO_V1(batchjob_complete_many);
BJ_FUNCTION_INFO_V1(batchjob_complete_and_claim);
BJ_FUNCTION_INFO_V1(batchjob_fail_many);
BJ_FUNCTION_INFO_V1(batchjob_reap);
BJ_FUNCTION_INFO_V1(batchjob_retry);
BJ_FUNCTION_INFO_V1(batchjob_cancel);

/*
 * The statements of the lifecycle.  Each states in its WHERE clause the
 * transition it makes; see the file header.
 */

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
 * A job looked up by its id is checked to be PROCESSING against an InitPlan
 * constant, not a literal.  With the literal the planner proves the lease
 * index's predicate (status = 'PROCESSING'), and when its statistics show
 * few PROCESSING rows (taken while the queue was all PENDING, say) a
 * generic plan scans that whole index, filtered by job_id, instead of
 * looking the job up by its primary key; the lease index holds an entry
 * for every job leased since the last vacuum, so each call grew slower
 * (issue 16's profile).
 */
#define IS_PROCESSING "status = (SELECT 'PROCESSING'::pg_catalog.text)"

/*
 * The jobs of the array $1 that cond admits, locked in ascending job_id
 * order whatever plan the planner picks, so that two batch calls, or a
 * batch call and a cancel (which locks in the same order), cannot
 * deadlock.  The UPDATE around it checks cond again on the locked rows.
 */
#define LOCKED_IN_ORDER(cond) \
	"job_id = ANY (ARRAY(SELECT job_id FROM %1$s" \
	"  WHERE job_id = ANY ($1) AND " cond \
	"  ORDER BY job_id FOR UPDATE))"

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
	" WHERE " where " AND " IS_PROCESSING " AND NOT is_parent"

/* a job's state, to explain a refused call */
static JobStatement read_state = {
	.sql = "SELECT status, is_parent, locked_by, attempts FROM %1$s"
	" WHERE job_id = $1",
	.nargs = 1, .argtypes = {INT8OID}
};

#define Anum_job_state_status		1
#define Anum_job_state_is_parent	2
#define Anum_job_state_locked_by	3
#define Anum_job_state_attempts		4

static JobStatement read_row = {
	.sql = "SELECT * FROM %1$s WHERE job_id = $1",
	.nargs = 1, .argtypes = {INT8OID}
};

static JobStatement probe_children = {
	.sql = "SELECT 1 FROM %1$s WHERE parent_job_id = $1 LIMIT 1",
	.nargs = 1, .argtypes = {INT8OID}
};

/*
 * SKIP LOCKED: a row another claimer holds is passed over, never waited
 * for, and the partial pending index keeps finished rows out of the scan.
 * Rows are locked in claim order.
 */
static JobStatement claim_jobs = {
	.sql = "UPDATE %1$s SET status = 'PROCESSING', locked_by = $1,"
	" locked_until = clock_timestamp() + $3, attempts = attempts + 1"
	" WHERE job_id = ANY (ARRAY("
	"  SELECT job_id FROM %1$s WHERE status = 'PENDING' AND NOT is_parent"
	"  AND run_at <= clock_timestamp()"
	"  AND ($4::text[] IS NULL OR created_by = ANY ($4))"
	"  ORDER BY priority DESC, created_at, job_id LIMIT $2"
	"  FOR UPDATE SKIP LOCKED))"
	" AND status = 'PENDING' RETURNING *",
	.nargs = 4, .argtypes = {TEXTOID, INT4OID, INTERVALOID, TEXTARRAYOID}
};

static JobStatement extend_lease = {
	.sql = "UPDATE %1$s SET locked_until = clock_timestamp() + $3"
	" WHERE job_id = $1 AND locked_by = $2 AND " IS_PROCESSING
	" AND NOT is_parent" HELD_IN_ATTEMPT("$4"),
	.nargs = 4, .argtypes = {INT8OID, TEXTOID, INTERVALOID, INT4OID}
};

static JobStatement report_progress = {
	.sql = "UPDATE %1$s SET processed_records = $2, success_count = $3,"
	" error_count = $4"
	" WHERE job_id = $1 AND " IS_PROCESSING " AND NOT is_parent"
	HELD_BY("$5") HELD_IN_ATTEMPT("$6")
	" RETURNING *",
	.nargs = 6, .argtypes = {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, INT4OID}
};

static JobStatement complete_job = {
	.sql = "UPDATE %1$s SET status = 'COMPLETED'"
	" WHERE job_id = $1 AND " IS_PROCESSING " AND NOT is_parent"
	HELD_BY("$2") HELD_IN_ATTEMPT("$3")
	" RETURNING *",
	.nargs = 3, .argtypes = {INT8OID, TEXTOID, INT4OID}
};

static JobStatement fail_job = {
	.sql = FAIL_SQL("job_id = $1")
	HELD_BY("$4") HELD_IN_ATTEMPT("$5")
	" RETURNING *",
	.nargs = 5, .argtypes = {INT8OID, TEXTOID, BOOLOID, TEXTOID, INT4OID}
};

/* the array forms return the ids they changed */
static JobStatement complete_jobs = {
	.sql = "UPDATE %1$s SET status = 'COMPLETED'"
	" WHERE " LOCKED_IN_ORDER(IS_PROCESSING " AND NOT is_parent"
							  HELD_BY("$2"))
	" AND " IS_PROCESSING " AND NOT is_parent" HELD_BY("$2")
	" RETURNING job_id",
	.nargs = 2, .argtypes = {INT8ARRAYOID, TEXTOID}
};

static JobStatement fail_jobs = {
	.sql = FAIL_SQL(LOCKED_IN_ORDER(IS_PROCESSING " AND NOT is_parent"
									HELD_BY("$4")))
	HELD_BY("$4") " RETURNING job_id",
	.nargs = 4, .argtypes = {INT8ARRAYOID, TEXTOID, BOOLOID, TEXTOID}
};

#define Anum_transition_many_job_id	1

/* the job's lease holder is gone: give the attempt back, or fail */
static JobStatement reap_leases = {
	.sql = "UPDATE %1$s SET"
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
	.nargs = 0
};

static JobStatement retry_job = {
	.sql = "UPDATE %1$s SET status = 'PENDING', attempts = 0,"
	" run_at = clock_timestamp()"
	" WHERE job_id = $1 AND status = 'FAILED' AND NOT is_parent"
	" RETURNING *",
	.nargs = 1, .argtypes = {INT8OID}
};

static JobStatement retry_below = {
	.sql = "UPDATE %1$s SET status = 'PENDING', attempts = 0,"
	" run_at = clock_timestamp()"
	" WHERE job_id = ANY (ARRAY("
	DESCENDANTS_OF_1
	"  AND j.status = 'FAILED' AND NOT j.is_parent"
	"  ORDER BY j.job_id FOR UPDATE))"
	" AND status = 'FAILED'",
	.nargs = 1, .argtypes = {INT8OID}
};

/* a leaf, or a parent that has no children to follow */
static JobStatement cancel_job = {
	.sql = "UPDATE %1$s SET status = 'CANCELLED'"
	" WHERE job_id = $1 AND status IN ('PENDING', 'PROCESSING')"
	" AND (NOT is_parent OR " JOB_CHILDREN_SQL("") " = 0)",
	.nargs = 1, .argtypes = {INT8OID}
};

/* batchjob.h; waits for rows that others hold */
static JobStatement cancel_below = {
	.sql = CANCEL_DESCENDANTS_SQL(""), .nargs = 1, .argtypes = {INT8OID}
};

/* Raises 22023 unless the lease argument is a positive interval. */
static void
check_lease(FunctionCallInfo fcinfo, int argno)
{
	Interval   *lease;
	double		usecs;

	job_require_arg(fcinfo, argno, "lease");
	lease = PG_GETARG_INTERVAL_P(argno);
	usecs = (double) lease->time +
		((double) lease->day + (double) lease->month * DAYS_PER_MONTH) *
		USECS_PER_DAY;
	if (usecs <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lease must be a positive interval: %s",
						DatumGetCString(DirectFunctionCall1(interval_out,
															PointerGetDatum(lease))))));
}

/*
 * The claim a worker call names: its worker, and the attempt it was given
 * by batchjob_claim (has_attempt false when not given, as in the 1.1
 * signatures).  A NULL worker names no worker.
 */
typedef struct CallerClaim
{
	const char *worker;
	bool		has_attempt;
	int32		attempt;
} CallerClaim;

/*
 * Reads job_id: P0002 when there is no such job.  Returns whether it is a
 * parent, and its status.  Leaves the job_state_stmt row (Anum_job_state_*) in
 * SPI_tuptable.  Must be connected to SPI.
 */
static bool
read_job(Oid nspid, int64 job_id, JobStatus *status)
{
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		isnull;

	job_run(&read_state, nspid, values, NULL, false, SPI_OK_SELECT,
			"reading the job");
	if (SPI_processed == 0)
		job_report_missing(MISSING_JOB, job_id);
	*status = job_status_from_datum(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc,
												  Anum_job_state_status,
												  &isnull), job_id);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc,
									  Anum_job_state_is_parent, &isnull));
}

/*
 * The status of a job given to a worker function, for an explanation:
 * 22023 when it is a parent (whose status follows its children).
 */
static JobStatus
job_state(Oid nspid, int64 job_id)
{
	JobStatus	status;

	if (read_job(nspid, job_id, &status))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job " INT64_FORMAT " is a parent job", job_id),
				 errdetail("A parent's status and progress follow its children.")));
	return status;
}

/*
 * 55000 for a job whose status does not allow what was asked, or whose
 * current claim is not the one the caller named (claim may be NULL).
 */
static void
report_wrong_status(Oid nspid, int64 job_id, JobStatus wanted,
					const CallerClaim *claim)
{
	JobStatus	status = job_state(nspid, job_id);

	if (status == wanted && claim != NULL &&
		(claim->worker != NULL || claim->has_attempt))
	{
		bool		holder_null;
		bool		isnull;
		Datum		holder = SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc,
										   Anum_job_state_locked_by, &holder_null);
		int32		attempts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc,
														   Anum_job_state_attempts,
														   &isnull));
		char	   *asked;

		if (claim->worker != NULL && claim->has_attempt)
			asked = psprintf("held by worker \"%s\" in attempt %d",
							 claim->worker, claim->attempt);
		else if (claim->worker != NULL)
			asked = psprintf("held by worker \"%s\"", claim->worker);
		else
			asked = psprintf("in attempt %d", claim->attempt);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " is not %s", job_id, asked),
				 holder_null ?
				 errdetail("It is PROCESSING in attempt %d, held by no worker.",
						   attempts) :
				 errdetail("It is held by worker \"%s\" in attempt %d.",
						   TextDatumGetCString(holder), attempts),
				 errhint("Its lease may have expired, so that batchjob_reap() took it back and it was claimed again.")));
	}

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("job " INT64_FORMAT " is %s, not %s", job_id,
					job_status_names[status], job_status_names[wanted]),
			 wanted == JOB_PROCESSING ?
			 errhint("It may have been cancelled, or taken back by batchjob_reap() after its lease expired.") : 0));
}

/*
 * Whether the calling function has its 1.2 signature, with the claim
 * argument 1.2 added at its end (src/schema.c tells the versions apart);
 * nargs is its 1.2 argument count, one more than in 1.1.
 */
static bool
has_claim_argument(FunctionCallInfo fcinfo, int nargs)
{
	bool		v12 = job_schema(job_function_namespace(fcinfo)) >= JOB_SCHEMA_1_2;

	job_check_nargs(fcinfo, v12 ? nargs : nargs - 1);
	return v12;
}

/*
 * The optional worker argument at argno (NULL: any holder may finish the
 * job), stored as the statement's parameter argno; returns it as a C string
 * for messages, or NULL.  given is false when the signature has no such
 * argument (the array forms in 1.1).
 */
static const char *
optional_worker(FunctionCallInfo fcinfo, int argno, bool given,
				Datum *values, char *nulls)
{
	if (!given || PG_ARGISNULL(argno))
	{
		values[argno] = (Datum) 0;
		nulls[argno] = 'n';
		return NULL;
	}
	values[argno] = PG_GETARG_DATUM(argno);
	return TextDatumGetCString(values[argno]);
}

/*
 * The claim a call names: the worker at argno and the attempt at argno + 1,
 * which is the signature's last argument, stored as the statement's
 * parameters of the same numbers.  A 1.1 signature has no attempt
 * argument: no attempt then.
 */
static void
caller_claim(FunctionCallInfo fcinfo, int argno, Datum *values, char *nulls,
			 CallerClaim *claim)
{
	int			attno = argno + 1;
	bool		given = has_claim_argument(fcinfo, attno + 1);

	claim->worker = optional_worker(fcinfo, argno, true, values, nulls);
	claim->has_attempt = given && !PG_ARGISNULL(attno);
	claim->attempt = claim->has_attempt ? PG_GETARG_INT32(attno) : 0;
	values[attno] = claim->has_attempt ? PG_GETARG_DATUM(attno) : (Datum) 0;
	nulls[attno] = claim->has_attempt ? ' ' : 'n';
}

/*
 * 55000 when the acting role names no worker but is not an admin (see
 * role_is_job_admin): a role with worker access changes only the jobs it
 * holds, so it must say which claim it acts for.  verb and job_id (NULL
 * for the array forms) say what it asked for.  Heartbeats always name
 * their worker.
 */
static void
require_worker_name(const JobCall *call, const CallerClaim *claim,
					const char *verb, const int64 *job_id)
{
	Oid			role = call->role;

	if (claim->worker != NULL || role_is_job_admin(call->nspid, role))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 job_id != NULL ?
			 errmsg("no worker named to %s job " INT64_FORMAT, verb, *job_id) :
			 errmsg("no worker named to %s jobs", verb),
			 errdetail("Role \"%s\" is not a batchjob admin, so it may change only the jobs its worker holds.",
					   GetUserNameFromId(role, false)),
			 errhint("Pass the worker name given to batchjob_claim() and the attempt it returned with the job.")));
}

/*
 * Runs a one-job UPDATE ... RETURNING * whose WHERE clause requires status
 * wanted (and the claim, when one is named), and returns the new row;
 * explains with 55000 (or P0002, 22023) when the job was not in that state.
 * With verb (a worker call), a role that is not an admin must name its
 * worker.  A job of another tenant is then reported just where a job that
 * does not exist would be, so that the two give the same error.
 */
static Datum
transition_one(FunctionCallInfo fcinfo, const JobCall *call, JobStatement *stmt,
			   Datum *values, const char *nulls, JobStatus wanted,
			   const CallerClaim *claim, const char *verb)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			nspid = call->nspid;
	int64		job_id = DatumGetInt64(values[0]);
	Datum		result;

	job_spi_connect();
	if (verb != NULL)
		require_worker_name(call, claim, verb, &job_id);
	check_job_tenant(call, job_id, MISSING_JOB);
	job_run(stmt, nspid, values, nulls, false, SPI_OK_UPDATE_RETURNING,
			"changing the job");
	if (SPI_processed == 0)
		report_wrong_status(nspid, job_id, wanted, claim);
	result = job_result_datum(fcinfo, SPI_tuptable->vals[0],
							  SPI_tuptable->tupdesc, caller);
	job_spi_finish();
	return result;
}

/*
 * Checks the worker, max_jobs and lease arguments of a claim at argno,
 * argno + 1 and argno + 2, and stores them as the claim statement's
 * parameters 1 to 3.
 */
static void
claim_arguments(FunctionCallInfo fcinfo, int argno, Datum *values)
{
	job_require_arg(fcinfo, argno, "worker");
	job_require_arg(fcinfo, argno + 1, "max_jobs");
	check_lease(fcinfo, argno + 2);
	check_claim_max_jobs(PG_GETARG_INT32(argno + 1));
	values[0] = PG_GETARG_DATUM(argno);
	values[1] = PG_GETARG_DATUM(argno + 1);
	values[2] = PG_GETARG_DATUM(argno + 2);
}

/*
 * Claims for the acting role of call (values from claim_arguments) and
 * returns the claimed rows as the function's result set.
 */
static void
claim_into_result(FunctionCallInfo fcinfo, const JobCall *call, Datum *values)
{
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		unrestricted;

	job_spi_connect();
	/* only the jobs of the tenants the caller serves (src/tenant.c) */
	values[3] = tenant_scope_datum(call->nspid, call->role, &unrestricted);
	if (unrestricted)
		nulls[3] = 'n';
	job_run(&claim_jobs, call->nspid, values, nulls, false,
			SPI_OK_UPDATE_RETURNING, "claiming jobs");
	job_return_tuptable(fcinfo);
	ensure_folder(call->nspid);
	job_spi_finish();
}

/*
 * batchjob_claim(worker, max_jobs, lease): up to max_jobs claimable jobs,
 * now PROCESSING and leased to worker.  Concurrent claimers skip each
 * other's rows instead of waiting (see the claim statement).
 */
Datum
batchjob_claim(PG_FUNCTION_ARGS)
{
	Datum		values[4];
	JobCall		call;

	claim_arguments(fcinfo, 0, values);
	job_call_begin(fcinfo, &call);
	claim_into_result(fcinfo, &call, values);
	job_call_end(&call);
	return (Datum) 0;
}

/*
 * batchjob_heartbeat(job_id, worker, lease [, attempt]): extends the lease
 * from now; false, changing nothing, when the job is not PROCESSING under
 * worker any more (cancelled, reaped, finished or gone) or, with attempt,
 * is in another attempt (reaped and claimed again).  A worker learns that
 * its claim is gone the same way whichever happened, so it stays a boolean;
 * a job of another tenant answers false, as one that does not exist.
 */
Datum
batchjob_heartbeat(PG_FUNCTION_ARGS)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', 'n'};
	bool		extended = false;
	JobCall		call;

	job_require_arg(fcinfo, 0, "job_id");
	job_require_arg(fcinfo, 1, "worker");
	check_lease(fcinfo, 2);
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_GETARG_DATUM(2);
	values[3] = (Datum) 0;
	if (has_claim_argument(fcinfo, 4) && !PG_ARGISNULL(3))
	{
		values[3] = PG_GETARG_DATUM(3);
		nulls[3] = ' ';
	}

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	if (!job_hidden(&call, PG_GETARG_INT64(0)))
	{
		job_run(&extend_lease, call.nspid, values, nulls, false, SPI_OK_UPDATE,
				"extending the lease");
		extended = SPI_processed > 0;
	}
	job_spi_finish();
	job_call_end(&call);
	PG_RETURN_BOOL(extended);
}

/*
 * batchjob_progress(job_id, processed, succeeded, failed [, worker
 * [, attempt]]): absolute figures, so a resent report changes nothing.  The
 * table's CHECK constraints refuse negative figures and more processed than
 * total (23514).
 */
Datum
batchjob_progress(PG_FUNCTION_ARGS)
{
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	CallerClaim claim;
	int64		outcome;
	JobCall		call;
	Datum		result;

	caller_claim(fcinfo, 4, values, nulls, &claim);

	job_require_arg(fcinfo, 0, "job_id");
	job_require_arg(fcinfo, 1, "processed");
	job_require_arg(fcinfo, 2, "succeeded");
	job_require_arg(fcinfo, 3, "failed");
	/* negative figures are the table's CHECK constraint's to refuse */
	if (PG_GETARG_INT64(1) >= 0 && PG_GETARG_INT64(2) >= 0 &&
		PG_GETARG_INT64(3) >= 0 &&
		(pg_add_s64_overflow(PG_GETARG_INT64(2), PG_GETARG_INT64(3), &outcome) ||
		 outcome > PG_GETARG_INT64(1)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("succeeded plus failed (" INT64_FORMAT " + " INT64_FORMAT ") exceeds processed (" INT64_FORMAT ")",
						PG_GETARG_INT64(2), PG_GETARG_INT64(3),
						PG_GETARG_INT64(1))));
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_GETARG_DATUM(2);
	values[3] = PG_GETARG_DATUM(3);
	job_call_begin(fcinfo, &call);
	result = transition_one(fcinfo, &call, &report_progress, values, nulls,
							JOB_PROCESSING, &claim, "report progress on");
	job_call_end(&call);
	PG_RETURN_DATUM(result);
}

/* batchjob_complete(job_id [, worker [, attempt]]): PROCESSING to COMPLETED. */
Datum
batchjob_complete(PG_FUNCTION_ARGS)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	CallerClaim claim;
	JobCall		call;
	Datum		result;

	caller_claim(fcinfo, 1, values, nulls, &claim);
	job_require_arg(fcinfo, 0, "job_id");
	values[0] = PG_GETARG_DATUM(0);
	job_call_begin(fcinfo, &call);
	result = transition_one(fcinfo, &call, &complete_job, values, nulls,
							JOB_PROCESSING, &claim, "complete");
	job_call_end(&call);
	PG_RETURN_DATUM(result);
}

/*
 * batchjob_fail(job_id, error_details, retry [, worker [, attempt]]): back
 * to PENDING after a backoff while retry is true and attempts remain, else
 * FAILED.
 */
Datum
batchjob_fail(PG_FUNCTION_ARGS)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	CallerClaim claim;
	JobCall		call;
	Datum		result;

	caller_claim(fcinfo, 3, values, nulls, &claim);

	job_require_arg(fcinfo, 0, "job_id");
	job_require_arg(fcinfo, 2, "retry");
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	values[2] = PG_GETARG_DATUM(2);
	job_call_begin(fcinfo, &call);
	result = transition_one(fcinfo, &call, &fail_job, values, nulls,
							JOB_PROCESSING, &claim, "fail");
	job_call_end(&call);
	PG_RETURN_DATUM(result);
}

/* qsort order for job ids: ascending, the order jobs are locked in. */
static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Runs a many-job transition over the distinct ids of the array argument
 * 0; all or nothing: if any job was not PROCESSING (or, with a worker named
 * at argument and parameter worker_argno, not held by it), raises as the
 * one-job form would for the first such job (so the whole statement rolls
 * back).  A role that is not an admin must name its worker.  worker_given
 * is false when the signature has no worker argument (1.1).  Jobs of other
 * tenants are left out of the statement and reported as the jobs that do
 * not exist are.  Returns how many jobs changed.
 */
static int64
transition_many(FunctionCallInfo fcinfo, const JobCall *call, JobStatement *stmt,
				Datum *values, char *nulls, int worker_argno, bool worker_given,
				const char *verb)
{
	Oid			nspid = call->nspid;
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	int64	   *ids;
	int			nids = 0;
	int			i;
	uint64		j;
	int64	   *done;
	uint64		ndone;
	int64	   *hidden;
	int			nhidden;
	int			h;
	CallerClaim claim = {NULL, false, 0};

	claim.worker = optional_worker(fcinfo, worker_argno, worker_given,
								   values, nulls);

	deconstruct_array(array, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &elem_nulls, &nelems);
	ids = palloc(sizeof(int64) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
		if (!elem_nulls[i])
			ids[nids++] = DatumGetInt64(elems[i]);
	qsort(ids, nids, sizeof(int64), compare_int64);
	for (i = 0, j = 0; i < nids; i++)
		if (j == 0 || ids[j - 1] != ids[i])
			ids[j++] = ids[i];
	nids = (int) j;

	values[0] = PointerGetDatum(array);
	job_spi_connect();
	require_worker_name(call, &claim, verb, NULL);
	nhidden = jobs_hidden(call, values[0], &hidden);
	if (nhidden > 0)
	{
		/* the statement gets only the jobs the role may act on */
		Datum	   *visible = palloc(sizeof(Datum) * Max(nids, 1));
		int			nvisible = 0;

		for (i = 0, h = 0; i < nids; i++)
		{
			while (h < nhidden && hidden[h] < ids[i])
				h++;
			if (h < nhidden && hidden[h] == ids[i])
				continue;
			visible[nvisible++] = Int64GetDatum(ids[i]);
		}
		values[0] = PointerGetDatum(construct_array(visible, nvisible,
													INT8OID, 8,
													FLOAT8PASSBYVAL,
													TYPALIGN_DOUBLE));
	}
	job_run(stmt, nspid, values, nulls, false, SPI_OK_UPDATE_RETURNING,
			"changing the jobs");
	ndone = SPI_processed;
	if (ndone != (uint64) nids)
	{
		bool		isnull;

		done = palloc(sizeof(int64) * Max(ndone, 1));
		for (j = 0; j < ndone; j++)
			done[j] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[j],
												  SPI_tuptable->tupdesc,
												  Anum_transition_many_job_id,
												  &isnull));
		qsort(done, ndone, sizeof(int64), compare_int64);
		for (i = 0, j = 0, h = 0; i < nids; i++)
		{
			while (h < nhidden && hidden[h] < ids[i])
				h++;
			if (j < ndone && done[j] == ids[i])
				j++;
			else if (h < nhidden && hidden[h] == ids[i])
				job_report_missing(MISSING_JOB, ids[i]);
			else
				report_wrong_status(nspid, ids[i], JOB_PROCESSING, &claim);
		}
	}
	job_spi_finish();
	return (int64) ndone;
}

/*
 * batchjob_complete(job_ids bigint[] [, worker]): completes PROCESSING jobs
 * in one statement, so each parent is rolled up once for the lot.
 */
Datum
batchjob_complete_many(PG_FUNCTION_ARGS)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	JobCall		call;
	int64		n;

	job_require_arg(fcinfo, 0, "job_ids");
	job_call_begin(fcinfo, &call);
	n = transition_many(fcinfo, &call, &complete_jobs, values, nulls, 1,
						has_claim_argument(fcinfo, 2), "complete");
	job_call_end(&call);
	PG_RETURN_INT64(n);
}

/*
 * batchjob_complete_and_claim(done bigint[], worker, max_jobs, lease): a
 * worker's whole turn in one call, so one round trip and one commit per
 * batch.  Completes the jobs of done as batchjob_complete(done, worker)
 * does (all or nothing, same errors; NULL or empty completes nothing),
 * then claims up to max_jobs as batchjob_claim(worker, max_jobs, lease)
 * does, and returns the claimed jobs.  An error in either part undoes
 * both.  The jobs just completed are not PENDING, so they cannot be
 * claimed again.
 */
Datum
batchjob_complete_and_claim(PG_FUNCTION_ARGS)
{
	Datum		claim_values[4];
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	JobCall		call;

	job_check_nargs(fcinfo, 4);
	claim_arguments(fcinfo, 1, claim_values);
	job_call_begin(fcinfo, &call);
	if (!PG_ARGISNULL(0) &&
		ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(0)),
					   ARR_DIMS(PG_GETARG_ARRAYTYPE_P(0))) > 0)
		transition_many(fcinfo, &call, &complete_jobs, values, nulls, 1,
						true, "complete");
	claim_into_result(fcinfo, &call, claim_values);
	job_call_end(&call);
	return (Datum) 0;
}

/*
 * batchjob_fail(job_ids bigint[], error_details, retry [, worker]): the same
 * for failures.
 */
Datum
batchjob_fail_many(PG_FUNCTION_ARGS)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	JobCall		call;
	int64		n;

	job_require_arg(fcinfo, 0, "job_ids");
	job_require_arg(fcinfo, 2, "retry");
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	values[2] = PG_GETARG_DATUM(2);
	job_call_begin(fcinfo, &call);
	n = transition_many(fcinfo, &call, &fail_jobs, values, nulls, 3,
						has_claim_argument(fcinfo, 4), "fail");
	job_call_end(&call);
	PG_RETURN_INT64(n);
}

/*
 * batchjob_reap(): jobs whose lease expired go back to PENDING, or to
 * FAILED when they have used their attempts.  Reapers skip rows another
 * session holds, so any number can run at once (from pg_cron, say).
 */
Datum
batchjob_reap(PG_FUNCTION_ARGS)
{
	uint64		n;

	job_spi_connect();
	job_run(&reap_leases, job_function_namespace(fcinfo), NULL, NULL, false,
			SPI_OK_UPDATE, "reaping expired leases");
	n = SPI_processed;
	ensure_folder(job_function_namespace(fcinfo));
	job_spi_finish();
	PG_RETURN_INT64((int64) n);
}

/*
 * batchjob_retry(job_id): a FAILED job back to PENDING with its attempts
 * reset; on a parent, every FAILED job below it.  A finished parent above
 * reopens through the rollup.
 */
Datum
batchjob_retry(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			nspid;
	int64		job_id;
	Datum		values[1];
	Datum		result;
	JobStatus	status;
	JobCall		call;

	job_require_arg(fcinfo, 0, "job_id");
	nspid = job_function_namespace(fcinfo);
	job_id = PG_GETARG_INT64(0);
	values[0] = PG_GETARG_DATUM(0);

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	check_job_tenant(&call, job_id, MISSING_JOB);
	if (!read_job(nspid, job_id, &status))
	{
		job_spi_finish();
		result = transition_one(fcinfo, &call, &retry_job, values, NULL,
								JOB_FAILED, NULL, NULL);
		job_call_end(&call);
		PG_RETURN_DATUM(result);
	}

	job_run(&retry_below, nspid, values, NULL, false, SPI_OK_UPDATE,
			"retrying the failed jobs");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("parent job " INT64_FORMAT " has no FAILED job below it",
						job_id)));
	job_run(&read_row, nspid, values, NULL, false, SPI_OK_SELECT,
			"reading the job");
	result = job_result_datum(fcinfo, SPI_tuptable->vals[0],
							  SPI_tuptable->tupdesc, caller);
	job_spi_finish();
	job_call_end(&call);
	PG_RETURN_DATUM(result);
}

/*
 * batchjob_cancel(job_id): cancels an unfinished job, or on a parent every
 * unfinished job below it in one statement; returns how many changed (0 for
 * a job already finished).  A worker holding a cancelled job finds out on
 * its next heartbeat (false) or progress/complete/fail call (55000).
 */
Datum
batchjob_cancel(PG_FUNCTION_ARGS)
{
	Oid			nspid;
	int64		job_id;
	Datum		values[1];
	uint64		n;
	JobStatus	status;
	bool		has_children;
	JobCall		call;

	job_require_arg(fcinfo, 0, "job_id");
	nspid = job_function_namespace(fcinfo);
	job_id = PG_GETARG_INT64(0);
	values[0] = PG_GETARG_DATUM(0);

	job_call_begin(fcinfo, &call);
	job_spi_connect();
	check_job_tenant(&call, job_id, MISSING_JOB);
	has_children = false;
	if (read_job(nspid, job_id, &status))
		has_children = job_has_children(nspid, job_id);

	job_run(has_children ? &cancel_below : &cancel_job, nspid, values, NULL,
			false, SPI_OK_UPDATE, "cancelling the job");
	n = SPI_processed;
	job_spi_finish();
	job_call_end(&call);
	PG_RETURN_INT64((int64) n);
}

/*
 * Whether job_id has any child: a parent's set of children decides whether
 * a cancel follows them and whether a split may add them.  Must be
 * connected to SPI.
 */
bool
job_has_children(Oid nspid, int64 job_id)
{
	Datum		values[1] = {Int64GetDatum(job_id)};

	job_run(&probe_children, nspid, values, NULL, false, SPI_OK_SELECT,
			"checking for children");
	return SPI_processed > 0;
}
