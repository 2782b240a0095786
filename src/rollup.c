/*-------------------------------------------------------------------------
 *
 * src/rollup.c
 *	  The triggers on batch_jobs: a row guard and the per-statement rollup.
 *
 * Design.  A child change must cost the same however many siblings it has,
 * and one statement that changes many children must touch each parent once.
 * So the rollup is an AFTER ... FOR EACH STATEMENT trigger with transition
 * tables: it reads the statement's old and new rows in C, sums the
 * difference per parent (status counts and record counters), and applies
 * each parent's difference with a single UPDATE.  It never reads siblings.
 *
 * A parent's status, error_details and timestamps are not computed here but
 * in the BEFORE ROW guard, from the child_* counters of the row being
 * written.  The rollup, batchjob_refresh_parent() and plain SQL all write
 * parents through that one guard, so they cannot disagree about the rules.
 *
 * Locking.  The rollup never waits for a parent's row lock: it folds its
 * difference into the parent when the lock is free and otherwise records
 * it in batch_job_deltas for the folder (src/fold.c).  So workers finishing
 * children of one parent do not queue behind each other, and parents can
 * never be part of a deadlock, however deeply they nest.  The UPDATE of a
 * parent is itself a statement on batch_jobs, so it fires the rollup again,
 * which carries the parent's own change to its parent.
 *
 * Restores.  pg_dump keeps batch_jobs, batch_job_deltas and the identity
 * sequence (pg_extension_config_dump), and a restore loads each table with
 * one COPY after CREATE EXTENSION, triggers on.  The dump is one snapshot,
 * in which every parent's stored figures plus its waiting differences
 * already equal its children; adding the children again as the COPY brings
 * them would count each one twice.  So a child contributes nothing to a
 * parent row that the same INSERT statement brought "already counted": with
 * child counters that are not all zero (a parent that a user inserts has
 * zero counters, and only a copy of an existing parent comes with its
 * children counted), or with differences already waiting for it in
 * batch_job_deltas (its figures were all still waiting when the dump was
 * taken; pg_dump loads batch_job_deltas before batch_jobs, which a parallel
 * pg_restore may not wait for).  Any other parent, a new one inserted
 * together with its children, gets them added as usual.  The rule holds
 * at every level of nesting: a sub-parent is a child of its own parent.
 * It needs the parent and its children in one statement, which is why a
 * dump taken with --inserts (a statement per row) cannot be restored
 * exactly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "batchjob.h"

BJ_FUNCTION_INFO_V1(batchjob_guard);
BJ_FUNCTION_INFO_V1(batchjob_row_check);
BJ_FUNCTION_INFO_V1(batchjob_rollup);
BJ_FUNCTION_INFO_V1(batchjob_truncate);

/* the lease a job gets when it becomes PROCESSING without one: 5 minutes */
static const Interval default_lease = {.time = 5 * USECS_PER_MINUTE};

/*
 * Is $1 among the ancestors of $2 (or $2 itself)?  The walk up uses UNION,
 * so it ends even if it meets a cycle.
 */
static JobStatement cycle_check = {
	.sql = "WITH RECURSIVE up(id) AS (SELECT $2::int8"
	" UNION SELECT j.parent_job_id FROM %1$s j JOIN up ON j.job_id = up.id"
	" WHERE j.parent_job_id IS NOT NULL)"
	" SELECT 1 FROM up WHERE id = $1 LIMIT 1",
	.nargs = 2, .argtypes = {INT8OID, INT8OID}
};

/* A parent row's parent before the statement, to spot re-parenting. */
typedef struct OldParent
{
	int64		job_id;			/* hash key */
	int64		parent_id;
} OldParent;

/* A parent row an INSERT statement brought, for restores (see above). */
typedef struct ArrivedParent
{
	int64		job_id;			/* hash key */
	bool		counted;		/* came with child counters not all zero */
} ArrivedParent;

/* What one run of the rollup gathers from the transition tables. */
typedef struct RollupState
{
	HTAB	   *deltas;			/* ParentDelta by parent id */
	HTAB	   *old_parents;	/* OldParent by job id */
	HTAB	   *arrived;		/* ArrivedParent by job id; NULL unless the
								 * statement is an INSERT */
	HTAB	   *deleted;		/* job ids (int64) of the parent rows a
								 * DELETE statement took; NULL otherwise */
	List	   *moved;			/* parents placed under a new parent: pairs
								 * job_id, parent_id as int64 pointers */
} RollupState;

/* One parent's share of a statement's changes. */
typedef struct ParentDelta
{
	int64		parent_id;		/* hash key */
	int64		count[JOB_NSTATUS];
	int64		total_records;
	int64		processed_records;
	int64		success_count;
	int64		error_count;
	bool		seen_old;		/* an old row was under it, so it is a
								 * parent already */
} ParentDelta;

/*
 * 39P01 unless the trigger fires on the extension's own batch_jobs, so
 * that it never runs (as the extension's owner, from 1.1 on) for a
 * look-alike table someone attached it to.
 */
static void
check_fired_by_batch_jobs(FunctionCallInfo fcinfo, Relation rel,
						  const char *fname)
{
	if (RelationGetNamespace(rel) != job_function_namespace(fcinfo) ||
		strcmp(RelationGetRelationName(rel), "batch_jobs") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() must be fired by the extension's batch_jobs table",
						fname)));
}

/* A bigint column, 0 when NULL: figures a constraint keeps non-null. */
static int64
get_int8(HeapTuple tuple, TupleDesc desc, AttrNumber attno, bool *isnull)
{
	Datum		d = heap_getattr(tuple, attno, desc, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

/*
 * Tells LISTENing clients what changed; PostgreSQL delivers the message at
 * commit, and not at all if the transaction rolls back.  A parent that
 * finishes sends batchjob_parent_done with its id and status; a job that
 * becomes claimable (new, retried, reaped, or its backoff already over)
 * sends batchjob_jobs_available, which PostgreSQL folds to one message per
 * transaction however many rows sent it.
 */
static void
notify_listeners(HeapTuple newtup, TupleDesc desc, const JobColumns *col,
				 int64 job_id, bool is_parent, bool is_update,
				 JobStatus old_status, JobStatus new_status)
{
	if (is_parent)
	{
		if (is_update && !JOB_STATUS_FINISHED(old_status) &&
			JOB_STATUS_FINISHED(new_status))
		{
			char	   *payload;

			/*
			 * Any role that can connect may LISTEN: with tenant isolation
			 * on, the message only says that some parent finished, and the
			 * listener reads what it may see of it.
			 */
			if (batchjob_tenant_isolation)
			{
				Async_Notify("batchjob_parent_done", NULL);
				return;
			}
			payload = psprintf("{\"job_id\": " INT64_FORMAT ", \"status\": \"%s\"}",
							   job_id, job_status_names[new_status]);
			Async_Notify("batchjob_parent_done", payload);
			pfree(payload);
		}
	}
	else if (new_status == JOB_PENDING &&
			 (!is_update || old_status != JOB_PENDING))
	{
		bool		isnull = true;
		Datum		run_at = (Datum) 0;

		if (col->run_at != InvalidAttrNumber)
			run_at = heap_getattr(newtup, col->run_at, desc, &isnull);
		if (isnull || DatumGetTimestampTz(run_at) <= GetCurrentTimestamp())
			Async_Notify("batchjob_jobs_available", NULL);
	}
}

/*
 * BEFORE INSERT OR UPDATE, FOR EACH ROW.
 *
 * For every row: stamps updated_at, started_at (first time the job leaves
 * PENDING) and completed_at (set when finished, cleared when reopened), and
 * refuses to move a finished child (COMPLETED or CANCELLED) back to work.
 *
 * For a parent with children: its status and error_details follow from its
 * child_* counters by the status rules; an explicit UPDATE to any other
 * status is refused, and so is clearing is_parent while children remain.
 *
 * This runs once per row of every statement, so it reads columns directly
 * and runs no SQL.
 */
Datum
batchjob_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	const JobColumns *col;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	bool		isnull;
	Datum		d;
	int64		job_id;
	JobStatus	old_status = JOB_PENDING;
	JobStatus	new_status;
	bool		is_parent;
	bool		was_parent = false;
	Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	int			repl_cols[10];
	Datum		repl_vals[10];
	bool		repl_nulls[10];
	int			nrepl = 0;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("batchjob_guard() was not called by the trigger manager")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("batchjob_guard() must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	col = job_columns(rel);

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtup = trigdata->tg_trigtuple;
		newtup = trigdata->tg_newtuple;
	}
	else
		newtup = trigdata->tg_trigtuple;

	job_id = get_int8(newtup, desc, col->job_id, &isnull);
	d = heap_getattr(newtup, col->status, desc, &isnull);
	if (isnull)
		return PointerGetDatum(newtup); /* the NOT NULL constraint says so */
	new_status = job_status_from_datum(d, job_id);
	d = heap_getattr(newtup, col->is_parent, desc, &isnull);
	is_parent = !isnull && DatumGetBool(d);
	if (oldtup != NULL)
	{
		old_status = job_status_from_datum(heap_getattr(oldtup, col->status,
														desc, &isnull),
										   job_id);
		d = heap_getattr(oldtup, col->is_parent, desc, &isnull);
		was_parent = !isnull && DatumGetBool(d);
	}

	/*
	 * A finished job that is or was a plain job stays finished; flipping
	 * is_parent in the same UPDATE does not get around that.
	 */
	if (oldtup != NULL &&
		(old_status == JOB_COMPLETED || old_status == JOB_CANCELLED) &&
		!JOB_STATUS_FINISHED(new_status) &&
		(!is_parent || !was_parent))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " is %s and cannot go back to %s",
						job_id, job_status_names[old_status],
						job_status_names[new_status]),
				 errdetail("Only a FAILED job can be put back to PENDING or PROCESSING.")));

	if (is_parent)
	{
		ChildCounts counts;
		JobStatus	derived;
		int			i;
		char	   *message;

		for (i = 0; i < JOB_NSTATUS; i++)
			counts.n[i] = get_int8(newtup, desc, col->child[i], &isnull);

		if (child_counts_total(&counts) > 0)
		{
			bool		fail_fast = false;

			if (col->on_child_failure != InvalidAttrNumber)
			{
				d = heap_getattr(newtup, col->on_child_failure, desc, &isnull);
				fail_fast = !isnull &&
					strcmp(TextDatumGetCString(d), "fail_fast") == 0;
			}
			(void) heap_getattr(newtup, col->started_at, desc, &isnull);
			derived = derive_parent_status(&counts, new_status, fail_fast,
										   !isnull);
			if (oldtup != NULL && new_status != old_status &&
				new_status != derived)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("job " INT64_FORMAT " cannot be set to %s: its status follows its children",
								job_id, job_status_names[new_status]),
						 errdetail("By its children the parent is %s.",
								   job_status_names[derived]),
						 errhint("Change the children, or call batchjob_refresh_parent(" INT64_FORMAT ").",
								 job_id)));
			new_status = derived;
			repl_cols[nrepl] = col->status;
			repl_vals[nrepl] = CStringGetTextDatum(job_status_names[derived]);
			repl_nulls[nrepl++] = false;

			message = JOB_STATUS_FINISHED(derived) ?
				parent_failure_message(&counts) : NULL;
			repl_cols[nrepl] = col->error_details;
			repl_vals[nrepl] = message ? CStringGetTextDatum(message) : (Datum) 0;
			repl_nulls[nrepl++] = (message == NULL);
		}
	}
	else if (was_parent)
	{
		int			i;

		for (i = 0; i < JOB_NSTATUS; i++)
			if (get_int8(oldtup, desc, col->child[i], &isnull) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("job " INT64_FORMAT " has children and must stay a parent",
								job_id),
						 errhint("Delete its children first.")));
	}

	if (oldtup != NULL)
	{
		repl_cols[nrepl] = col->updated_at;
		repl_vals[nrepl] = now;
		repl_nulls[nrepl++] = false;
	}

	if (new_status != JOB_PENDING)
	{
		(void) heap_getattr(newtup, col->started_at, desc, &isnull);
		if (isnull)
		{
			repl_cols[nrepl] = col->started_at;
			repl_vals[nrepl] = now;
			repl_nulls[nrepl++] = false;
		}
	}

	(void) heap_getattr(newtup, col->completed_at, desc, &isnull);
	if (JOB_STATUS_FINISHED(new_status) && isnull)
	{
		repl_cols[nrepl] = col->completed_at;
		repl_vals[nrepl] = now;
		repl_nulls[nrepl++] = false;
	}
	else if (!JOB_STATUS_FINISHED(new_status) && !isnull)
	{
		repl_cols[nrepl] = col->completed_at;
		repl_vals[nrepl] = (Datum) 0;
		repl_nulls[nrepl++] = true;
	}

	/*
	 * A PROCESSING job always has a lease, so that batchjob_reap() can take
	 * it back if its worker dies, however it got there (plain SQL, say).
	 */
	if (new_status == JOB_PROCESSING && !is_parent &&
		col->locked_until != InvalidAttrNumber)
	{
		(void) heap_getattr(newtup, col->locked_until, desc, &isnull);
		if (isnull)
		{
			repl_cols[nrepl] = col->locked_until;
			repl_vals[nrepl] = DirectFunctionCall2(timestamptz_pl_interval,
												   now,
												   PointerGetDatum(&default_lease));
			repl_nulls[nrepl++] = false;
		}
	}

	/* a lease means something only while the job is PROCESSING */
	if (new_status != JOB_PROCESSING && col->locked_by != InvalidAttrNumber)
	{
		(void) heap_getattr(newtup, col->locked_by, desc, &isnull);
		if (!isnull)
		{
			repl_cols[nrepl] = col->locked_by;
			repl_vals[nrepl] = (Datum) 0;
			repl_nulls[nrepl++] = true;
		}
		(void) heap_getattr(newtup, col->locked_until, desc, &isnull);
		if (!isnull)
		{
			repl_cols[nrepl] = col->locked_until;
			repl_vals[nrepl] = (Datum) 0;
			repl_nulls[nrepl++] = true;
		}
	}

	notify_listeners(newtup, desc, col, job_id, is_parent,
					 oldtup != NULL, old_status, new_status);

	if (nrepl > 0)
		newtup = heap_modify_tuple_by_cols(newtup, desc, nrepl, repl_cols,
										   repl_vals, repl_nulls);
	return PointerGetDatum(newtup);
}

/*
 * The arguments of batchjob_row_check, in the order of its SQL signature
 * (batchjob--1.1--1.2.sql, which says why one function).
 */
enum
{
	RC_STATUS,
	RC_ON_CHILD_FAILURE,
	RC_IS_PARENT,
	RC_JOB_ID,
	RC_PARENT_JOB_ID,
	RC_TOTAL_RECORDS,
	RC_PROCESSED_RECORDS,
	RC_SUCCESS_COUNT,
	RC_ERROR_COUNT,
	RC_CHILD_PENDING,
	RC_CHILD_PROCESSING,
	RC_CHILD_COMPLETED,
	RC_CHILD_FAILED,
	RC_CHILD_CANCELLED,
	RC_BATCH_NUMBER,
	RC_BATCH_OFFSET,
	RC_BATCH_SIZE,
	RC_ATTEMPTS,
	RC_MAX_ATTEMPTS,
	RC_NARGS
};

static const char *const rc_names[RC_NARGS] = {
	"status", "on_child_failure", "is_parent", "job_id", "parent_job_id",
	"total_records", "processed_records", "success_count", "error_count",
	"child_pending", "child_processing", "child_completed", "child_failed",
	"child_cancelled", "batch_number", "batch_offset", "batch_size",
	"attempts", "max_attempts"
};

/*
 * Raises what PostgreSQL raises for a broken CHECK constraint of
 * batch_jobs (same SQLSTATE, message and error fields), with a detail
 * naming the rule instead of printing the whole row.
 */
static void
row_check_failed(FunctionCallInfo fcinfo, const char *constraint,
				 const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("new row for relation \"%s\" violates check constraint \"%s\"",
					"batch_jobs", constraint),
			 errdetail_internal("%s", detail),
			 err_generic_string(PG_DIAG_SCHEMA_NAME,
								get_namespace_name(job_function_namespace(fcinfo))),
			 err_generic_string(PG_DIAG_TABLE_NAME, "batch_jobs"),
			 err_generic_string(PG_DIAG_CONSTRAINT_NAME, constraint)));
}

/*
 * Each of the given int8 arguments is NULL or at least min; otherwise the
 * constraint is broken.  As in SQL, a NULL passes.
 */
static void
row_check_at_least(FunctionCallInfo fcinfo, const char *constraint,
				   const int *args, int nargs, int64 min, bool is_int4)
{
	for (int i = 0; i < nargs; i++)
	{
		int			a = args[i];
		int64		v;

		if (PG_ARGISNULL(a))
			continue;
		v = is_int4 ? (int64) PG_GETARG_INT32(a) : PG_GETARG_INT64(a);
		if (v < min)
			row_check_failed(fcinfo, constraint,
							 psprintf("%s is " INT64_FORMAT ", below " INT64_FORMAT ".",
									  rc_names[a], v, min));
	}
}

/* A text argument that is NULL or one of the words; else broken. */
static void
row_check_one_of(FunctionCallInfo fcinfo, const char *constraint, int a,
				 const char *const *words, int nwords)
{
	text	   *t;
	int			len;

	if (PG_ARGISNULL(a))
		return;
	t = PG_GETARG_TEXT_PP(a);
	len = VARSIZE_ANY_EXHDR(t);
	for (int i = 0; i < nwords; i++)
		if (strlen(words[i]) == (size_t) len &&
			memcmp(VARDATA_ANY(t), words[i], len) == 0)
			return;
	row_check_failed(fcinfo, constraint,
					 psprintf("%s \"%s\" is not one of its values.",
							  rc_names[a], text_to_cstring(t)));
}

/*
 * The CHECK constraint of batch_jobs.  The rules are the eight constraints
 * of 1.0 and 1.1, checked in the order PostgreSQL checked them (by name)
 * and reported under their names, so a row that broke one breaks the same
 * one now.
 */
Datum
batchjob_row_check(PG_FUNCTION_ARGS)
{
	static const int attempts[] = {RC_ATTEMPTS};
	static const int max_attempts[] = {RC_MAX_ATTEMPTS};
	static const int batch_int8[] = {RC_BATCH_OFFSET};
	static const int batch_int4[] = {RC_BATCH_NUMBER};
	static const int batch_size[] = {RC_BATCH_SIZE};
	static const int children[] = {RC_CHILD_PENDING, RC_CHILD_PROCESSING,
		RC_CHILD_COMPLETED, RC_CHILD_FAILED, RC_CHILD_CANCELLED};
	static const int records[] = {RC_TOTAL_RECORDS, RC_PROCESSED_RECORDS,
	RC_SUCCESS_COUNT, RC_ERROR_COUNT};
	static const char *const failure_modes[] = {"continue", "fail_fast"};

	if (PG_NARGS() != RC_NARGS)
		elog(ERROR, "batchjob_row_check takes %d arguments, not %d",
			 RC_NARGS, (int) PG_NARGS());

	/* batch_jobs_attempts_check */
	row_check_at_least(fcinfo, "batch_jobs_attempts_check", attempts, 1, 0, true);
	row_check_at_least(fcinfo, "batch_jobs_attempts_check", max_attempts, 1, 1, true);
	/* batch_jobs_batch_check */
	row_check_at_least(fcinfo, "batch_jobs_batch_check", batch_int4, 1, 0, true);
	row_check_at_least(fcinfo, "batch_jobs_batch_check", batch_int8, 1, 0, false);
	row_check_at_least(fcinfo, "batch_jobs_batch_check", batch_size, 1, 1, true);
	/* batch_jobs_child_counters_check */
	row_check_at_least(fcinfo, "batch_jobs_child_counters_check",
					   children, lengthof(children), 0, false);
	/* batch_jobs_counters_check */
	row_check_at_least(fcinfo, "batch_jobs_counters_check",
					   records, lengthof(records), 0, false);
	/* batch_jobs_not_own_parent_check */
	if (!PG_ARGISNULL(RC_JOB_ID) && !PG_ARGISNULL(RC_PARENT_JOB_ID) &&
		PG_GETARG_INT64(RC_JOB_ID) == PG_GETARG_INT64(RC_PARENT_JOB_ID))
		row_check_failed(fcinfo, "batch_jobs_not_own_parent_check",
						 "parent_job_id is the job's own job_id.");
	/* batch_jobs_on_child_failure_check */
	row_check_one_of(fcinfo, "batch_jobs_on_child_failure_check",
					 RC_ON_CHILD_FAILURE, failure_modes, lengthof(failure_modes));
	/* batch_jobs_processed_check: is_parent OR total IS NULL OR processed <= total */
	if (!PG_ARGISNULL(RC_IS_PARENT) && !PG_GETARG_BOOL(RC_IS_PARENT) &&
		!PG_ARGISNULL(RC_TOTAL_RECORDS) && !PG_ARGISNULL(RC_PROCESSED_RECORDS) &&
		PG_GETARG_INT64(RC_PROCESSED_RECORDS) > PG_GETARG_INT64(RC_TOTAL_RECORDS))
		row_check_failed(fcinfo, "batch_jobs_processed_check",
						 psprintf("processed_records is " INT64_FORMAT ", above total_records " INT64_FORMAT ".",
								  PG_GETARG_INT64(RC_PROCESSED_RECORDS),
								  PG_GETARG_INT64(RC_TOTAL_RECORDS)));
	/* batch_jobs_status_check */
	row_check_one_of(fcinfo, "batch_jobs_status_check", RC_STATUS,
					 job_status_names, JOB_NSTATUS);

	PG_RETURN_BOOL(true);
}

/*
 * Notes a parent row the INSERT statement brought, and whether it came with
 * its children already counted in its child_* counters.
 */
static void
note_arrived_parent(RollupState *state, TupleTableSlot *slot,
					const JobColumns *col, int64 job_id)
{
	ArrivedParent *ap;
	bool		isnull;
	int			i;

	ap = hash_search(state->arrived, &job_id, HASH_ENTER, NULL);
	ap->counted = false;
	for (i = 0; i < JOB_NSTATUS; i++)
	{
		Datum		d = slot_getattr(slot, col->child[i], &isnull);

		if (!isnull && DatumGetInt64(d) != 0)
			ap->counted = true;
	}
}

/*
 * Whether the children an INSERT brought must not be added to this parent:
 * the same statement brought the parent already counting them (see the
 * file's header).  A parent that came with zero counters counts them too
 * when differences already wait for it, which only a restore that loaded
 * batch_job_deltas first leaves for a parent it has not inserted yet.
 * Must be connected to SPI.
 */
static bool
arrived_counted(const RollupState *state, Oid nspid, int64 parent_id)
{
	ArrivedParent *ap;

	ap = hash_search(state->arrived, &parent_id, HASH_FIND, NULL);
	if (ap == NULL)
		return false;
	if (ap->counted)
		return true;
	return differences_wait_for(nspid, parent_id);
}

/*
 * Adds every child row of a transition table to its parent's difference,
 * with sign +1 (new rows) or -1 (old rows).  Rows without a parent, which
 * include every parent row the rollup itself updates, are skipped.
 */
static void
accumulate(RollupState *state, Tuplestorestate *store, Relation rel,
		   const JobColumns *col, int sign)
{
	TupleTableSlot *slot;
	int			readptr;

	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);

	/* a read pointer of our own, as a scan of a transition table takes */
	readptr = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(store, readptr);
	tuplestore_rescan(store);

	while (tuplestore_gettupleslot(store, true, false, slot))
	{
		bool		isnull;
		Datum		d;
		int64		parent_id;
		int64		job_id;
		ParentDelta *delta;
		bool		found;
		JobStatus	status;

		job_id = DatumGetInt64(slot_getattr(slot, col->job_id, &isnull));
		if (state->arrived != NULL &&
			DatumGetBool(slot_getattr(slot, col->is_parent, &isnull)))
			note_arrived_parent(state, slot, col, job_id);
		if (state->deleted != NULL &&
			DatumGetBool(slot_getattr(slot, col->is_parent, &isnull)))
			(void) hash_search(state->deleted, &job_id, HASH_ENTER, NULL);

		d = slot_getattr(slot, col->parent_job_id, &isnull);
		if (isnull)
			continue;
		parent_id = DatumGetInt64(d);
		status = job_status_from_datum(slot_getattr(slot, col->status, &isnull),
									   job_id);

		/*
		 * Only a parent can close a cycle through parent_job_id; note each
		 * one whose parent the statement set or changed.
		 */
		if (DatumGetBool(slot_getattr(slot, col->is_parent, &isnull)))
		{
			OldParent  *op;

			if (sign < 0)
			{
				op = hash_search(state->old_parents, &job_id, HASH_ENTER, NULL);
				op->parent_id = parent_id;
			}
			else
			{
				op = hash_search(state->old_parents, &job_id, HASH_FIND, NULL);
				if (op == NULL || op->parent_id != parent_id)
				{
					int64	   *pair = palloc(2 * sizeof(int64));

					pair[0] = job_id;
					pair[1] = parent_id;
					state->moved = lappend(state->moved, pair);
				}
			}
		}

		delta = hash_search(state->deltas, &parent_id, HASH_ENTER, &found);
		if (!found)
			memset(((char *) delta) + sizeof(int64), 0,
				   sizeof(ParentDelta) - sizeof(int64));

		if (sign < 0)
			delta->seen_old = true;
		job_add_checked(&delta->count[status], sign, parent_id);
		d = slot_getattr(slot, col->total_records, &isnull);
		if (!isnull)
			job_add_checked(&delta->total_records, sign * DatumGetInt64(d), parent_id);
		job_add_checked(&delta->processed_records,
					sign * DatumGetInt64(slot_getattr(slot, col->processed_records, &isnull)),
					parent_id);
		job_add_checked(&delta->success_count,
					sign * DatumGetInt64(slot_getattr(slot, col->success_count, &isnull)),
					parent_id);
		job_add_checked(&delta->error_count,
					sign * DatumGetInt64(slot_getattr(slot, col->error_count, &isnull)),
					parent_id);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * Whether a transition table holds any row with a parent.  The rollup's
 * own UPDATE of a top-level parent fires the rollup again with nothing to
 * do; this lets that case return before any setup.
 */
static bool
has_child_rows(Tuplestorestate *store, Relation rel, const JobColumns *col)
{
	TupleTableSlot *slot;
	bool		found = false;
	bool		isnull;

	if (store == NULL)
		return false;
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	tuplestore_select_read_pointer(store,
								   tuplestore_alloc_read_pointer(store,
																 EXEC_FLAG_REWIND));
	tuplestore_rescan(store);
	while (!found && tuplestore_gettupleslot(store, true, false, slot))
	{
		(void) slot_getattr(slot, col->parent_job_id, &isnull);
		found = !isnull;
	}
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/*
 * qsort order for parent differences: ascending parent ids, so that two
 * statements fold shared parents in the same order.
 */
static int
compare_parent_ids(const void *a, const void *b)
{
	int64		x = (*(ParentDelta *const *) a)->parent_id;
	int64		y = (*(ParentDelta *const *) b)->parent_id;

	return (x > y) - (x < y);
}

/*
 * Refuses a statement that made a job its own ancestor.  The walk up from
 * the new parent uses UNION, so it ends even if it meets a cycle.
 */
static void
check_no_cycle(Oid nspid, const int64 *pair)
{
	Datum		values[2] = {Int64GetDatum(pair[0]), Int64GetDatum(pair[1])};
	int			rc;

	rc = SPI_execute_plan(job_plan(&cycle_check, nspid), values, NULL,
						  false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "cycle check failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job " INT64_FORMAT " cannot be placed under job " INT64_FORMAT,
						pair[0], pair[1]),
				 errdetail("Job " INT64_FORMAT " is job " INT64_FORMAT " itself or one of its descendants, so this would make a cycle.",
						   pair[1], pair[0])));
}

/*
 * Applies one parent's difference: folded into the parent at once when no
 * other transaction holds the right to fold, recorded for later when one
 * does or when the folder is busy (src/fold.c).  The guard then derives the
 * parent's status.  Recording for a parent no old row was under first
 * checks that it is a parent; a job that has children cannot stop being
 * one, so the others need no look.
 */
static void
apply_delta(Oid nspid, const ParentDelta *delta, bool busy)
{
	int64		values[FOLD_NVALUES];
	int			i;

	for (i = 0; i < JOB_NSTATUS; i++)
		values[i] = delta->count[i];
	values[JOB_NSTATUS] = delta->total_records;
	values[JOB_NSTATUS + 1] = delta->processed_records;
	values[JOB_NSTATUS + 2] = delta->success_count;
	values[JOB_NSTATUS + 3] = delta->error_count;

	if (busy)
	{
		if (delta->seen_old || parent_still_there(nspid, delta->parent_id))
			defer_delta(nspid, delta->parent_id, values);
	}
	else if (!fold_parent(nspid, delta->parent_id, values, false))
		defer_delta(nspid, delta->parent_id, values);
}

/*
 * Whether apply_delta will run a statement for any of these differences:
 * folding one at once does, and so does the look for a parent no old row
 * was under; recording one for the folder does not.
 */
static bool
deltas_run_statements(ParentDelta *const *sorted, long n, bool busy)
{
	long		i;

	if (n > 0 && !busy)
		return true;
	for (i = 0; i < n; i++)
		if (!sorted[i]->seen_old)
			return true;
	return false;
}

/* Whether a difference changes nothing, so its parent is not touched. */
static bool
delta_is_zero(const ParentDelta *delta)
{
	int			i;

	for (i = 0; i < JOB_NSTATUS; i++)
		if (delta->count[i] != 0)
			return false;
	return delta->total_records == 0 && delta->processed_records == 0 &&
		delta->success_count == 0 && delta->error_count == 0;
}

/*
 * AFTER INSERT, UPDATE or DELETE, FOR EACH STATEMENT, with transition
 * tables.  Rolls the statement's child changes up to their parents: cost
 * proportional to the rows the statement changed plus one UPDATE per
 * affected parent, independent of how many children the parents have.
 * Changes that leave a parent's figures as they were (a child's criteria,
 * say) do not touch the parent at all.
 */
Datum
batchjob_rollup(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	const JobColumns *col;
	MemoryContext cxt;
	MemoryContext old;
	HASHCTL		ctl;
	RollupState state;
	HASH_SEQ_STATUS seq;
	ListCell   *lc;
	ParentDelta *delta;
	ParentDelta **sorted;
	long		n = 0;
	long		i;
	Oid			nspid;
	bool		busy;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("batchjob_rollup() was not called by the trigger manager")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("batchjob_rollup() must be fired AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT")));
	if ((TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && trigdata->tg_newtable == NULL) ||
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
		 (trigdata->tg_oldtable == NULL || trigdata->tg_newtable == NULL)) ||
		(TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) && trigdata->tg_oldtable == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("batchjob_rollup() needs the statement's transition tables")));

	rel = trigdata->tg_relation;
	nspid = RelationGetNamespace(rel);
	check_fired_by_batch_jobs(fcinfo, rel, "batchjob_rollup");
	col = job_columns(rel);

	if (!has_child_rows(trigdata->tg_oldtable, rel, col) &&
		!has_child_rows(trigdata->tg_newtable, rel, col))
		return PointerGetDatum(NULL);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "batchjob rollup",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ParentDelta);
	ctl.hcxt = cxt;
	state.deltas = hash_create("batchjob rollup deltas", 8, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(OldParent);
	state.old_parents = hash_create("batchjob rollup old parents", 8, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	state.arrived = NULL;
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		ctl.entrysize = sizeof(ArrivedParent);
		state.arrived = hash_create("batchjob rollup arrived parents", 8, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	/*
	 * A DELETE that takes a parent with its children (a whole tree, as
	 * batchjob_purge deletes it) leaves that parent nothing to fold: its
	 * difference is dropped, rather than folded into a row that is gone or,
	 * with the folder busy, left in batch_job_deltas for the folder to drop.
	 */
	state.deleted = NULL;
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		ctl.entrysize = sizeof(int64);
		state.deleted = hash_create("batchjob rollup deleted parents", 8, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	state.moved = NIL;

	if (trigdata->tg_oldtable != NULL)
		accumulate(&state, trigdata->tg_oldtable, rel, col, -1);
	if (trigdata->tg_newtable != NULL)
		accumulate(&state, trigdata->tg_newtable, rel, col, +1);

	sorted = palloc(sizeof(ParentDelta *) *
					Max(hash_get_num_entries(state.deltas), 1));
	hash_seq_init(&seq, state.deltas);
	while ((delta = hash_seq_search(&seq)) != NULL)
		if (!delta_is_zero(delta) &&
			(state.deleted == NULL ||
			 hash_search(state.deleted, &delta->parent_id, HASH_FIND,
						 NULL) == NULL))
			sorted[n++] = delta;

	if (n > 0 || state.moved != NIL)
	{
		int			pinned = 0;
		bool		arrived = state.arrived != NULL &&
			hash_get_num_entries(state.arrived) > 0;

		/*
		 * The function has no SET clause (src/spi_plans.c says why): the
		 * statements below run with search_path pinned, and the common
		 * change, a difference left to the folder, runs none.
		 */
		job_spi_connect();
		if (state.moved != NIL || arrived)
			pinned = job_pin_search_path();
		foreach(lc, state.moved)
			check_no_cycle(nspid, (const int64 *) lfirst(lc));

		/* a restore: parents that came with their children counted */
		if (arrived)
		{
			long		kept = 0;

			for (i = 0; i < n; i++)
				if (!arrived_counted(&state, nspid, sorted[i]->parent_id))
					sorted[kept++] = sorted[i];
			n = kept;
		}

		qsort(sorted, n, sizeof(ParentDelta *), compare_parent_ids);
		busy = n > 0 && (folder_is_busy() || rollups_crowded());
		if (pinned == 0 && deltas_run_statements(sorted, n, busy))
			pinned = job_pin_search_path();
		for (i = 0; i < n; i++)
			apply_delta(nspid, sorted[i], busy);
		job_spi_finish();
		if (pinned != 0)
			job_unpin_search_path(pinned);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return PointerGetDatum(NULL);
}

/*
 * AFTER TRUNCATE, FOR EACH STATEMENT.  TRUNCATE fires no row triggers, so
 * nothing rolls up; but differences waiting in batch_job_deltas would be
 * folded into whatever parent reuses their ids (TRUNCATE ... RESTART
 * IDENTITY).  TRUNCATE's exclusive lock has waited out every transaction
 * that could still be adding one, so dropping them all is exact.
 */
Datum
batchjob_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("batchjob_truncate() was not called by the trigger manager")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("batchjob_truncate() must be fired AFTER TRUNCATE")));
	check_fired_by_batch_jobs(fcinfo, trigdata->tg_relation, "batchjob_truncate");

	job_spi_connect();
	drop_all_differences(RelationGetNamespace(trigdata->tg_relation));
	job_spi_finish();
	return PointerGetDatum(NULL);
}
