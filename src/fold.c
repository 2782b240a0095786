/*-------------------------------------------------------------------------
 *
 * src/fold.c
 *	  Folding rollup differences into parents without making concurrent
 *	  workers queue on a shared parent row, and the background worker that
 *	  guarantees every deferred difference is folded.
 *
 * Why.  A transaction that updates a parent row holds its lock until it
 * commits.  If every child change updated its parent, workers finishing
 * children of one parent would run one at a time, each waiting for the
 * previous one's commit.  Instead the rollup tries to take the right to fold
 * into the parent (lock_parent_for_fold, which never waits): when it gets
 * it, it takes out whatever differences wait for the parent and adds them
 * and its own to the parent with one plain UPDATE; when another transaction
 * holds it, it appends its difference to batch_job_deltas and goes on
 * without waiting.  Uncontended, a change costs an index probe that finds
 * nothing and one small UPDATE of the parent.
 *
 * Hand-off under load.  Folding at once costs every change an UPDATE of
 * its parent, which on a busy queue is about as much work as the change
 * itself.  So while a folder is folding many differences a round (changes
 * arriving faster than FOLDER_BUSY_STAY_ROWS per FOLDER_NAP_MS), it holds
 * a second advisory lock, the "busy" lock, and rollups that see it held
 * append their difference without trying to fold: the folder then folds a
 * round's worth into each parent with one UPDATE.  The stored parent row
 * lags by a round; every read of progress through the functions and the
 * view still adds what waits.  When the rate falls below the threshold the
 * folder lets go of the busy lock and rollups fold at once again, so a
 * lone session always sees its own changes in the stored row.
 *
 * Liveness.  A deferred difference must still be folded when no further
 * child change comes.  So a transaction that deferred one makes sure, just
 * before it commits, that a folder is running for its database: a dynamic
 * background worker that folds whatever is waiting, a few milliseconds at a
 * time, and exits after a quiet spell.  The folder holds a session advisory
 * lock while it runs; a committing transaction that finds the lock free
 * starts a new folder once it has committed (so the folder sees its
 * difference).  A folder about to exit first releases the lock, then waits
 * for every transaction still writing batch_job_deltas and sweeps once
 * more: a transaction that saw the old folder alive is one of those, and
 * one that did not will start the next folder.
 *
 * Deadlocks.  Rollups never wait for the right to fold, so parents cannot
 * be part of a lock cycle between workers, whatever the nesting.  Only the
 * explicit paths that change a parent as a whole (batchjob_fold(parent),
 * batchjob_refresh_parent, batchjob_split, batchjob_create_child) wait, for
 * one parent at a time, and they take the right to fold before the row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "batchjob.h"

PG_FUNCTION_INFO_V1(batchjob_fold);

PGDLLEXPORT void batchjob_folder_main(Datum main_arg);

/* How long the folder sleeps between rounds, and stays after the last. */
#define FOLDER_NAP_MS		10
#define FOLDER_QUIET_MS		2000

/*
 * The busy folder's nap, and the differences a round must fold for the
 * folder to take the busy lock and to keep it.  Before, only rollups that
 * met another transaction folding into their parent leave differences, so
 * a few a round already mean concurrent workers.  After, every change
 * does, and 16 per 10 ms (about 1,600 changes a second) is far above what
 * one session stepping through statements makes, well below a busy queue.
 * Busy, the folder naps longer: each parent UPDATE then takes in more
 * differences, and the stored row lags by about a round, 25 ms.
 */
#define FOLDER_BUSY_NAP_MS	25
#define FOLDER_BUSY_ENTER_ROWS	2
#define FOLDER_BUSY_STAY_ROWS	16		/* per FOLDER_NAP_MS */

/* Did this transaction defer a difference?  Reset at every transaction end. */
static bool deferred_in_xact = false;
static bool start_folder_at_commit = false;

/* Waiting differences this backend's folds took out; the folder's gauge. */
static uint64 rows_folded = 0;

/* batchjob.defer_when_busy: do rollups leave their work to a busy folder? */
static bool defer_when_busy = true;

/* The advisory lock a running folder holds for its database. */
static void
folder_locktag(LOCKTAG *tag, Oid dbid)
{
	SET_LOCKTAG_ADVISORY(*tag, dbid, 0x62617463, 0x686a6f62, 2);
}

/*
 * Is nobody else holding the lock in a conflicting mode?  Takes it without
 * waiting and lets go at once.
 */
static bool
lock_free_now(const LOCKTAG *tag, LOCKMODE mode)
{
	if (LockAcquire(tag, mode, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	LockRelease(tag, mode, false);
	return true;
}

/* Held by a folder while it folds many differences a round (see above). */
static void
folder_busy_locktag(LOCKTAG *tag, Oid dbid)
{
	SET_LOCKTAG_ADVISORY(*tag, dbid, 0x62617463, 0x686a6f62, 4);
}

/*
 * Is a folder of this database busy, so that a rollup should leave its
 * difference to it?  Never with batchjob.defer_when_busy off.  Never
 * waits.  The folder's own rollups (of nested parents) see it free, since
 * a backend's locks never conflict with its own requests.
 */
bool
folder_is_busy(void)
{
	LOCKTAG		tag;

	if (!defer_when_busy)
		return false;
	folder_busy_locktag(&tag, MyDatabaseId);
	return !lock_free_now(&tag, ShareLock);
}

/*
 * The right to fold into a parent: a transaction-level advisory lock on the
 * parent's id, in a key space of its own (the fourth field is 3; the SQL
 * advisory lock functions use 1 and 2), so it never meets the
 * application's advisory locks.
 *
 * Why not SKIP LOCKED on the parent's row?  Locking a row whose newest
 * version a concurrent transaction is writing makes PostgreSQL follow the
 * update chain, and that can wait (and deadlock, two folds each waiting for
 * the other) even under SKIP LOCKED.  A try-lock on a lock manager object
 * never waits.  Whoever holds it takes the row lock afterwards, and every
 * path that locks a parent row for writing takes this lock first, so a
 * holder waits for the row only behind a transaction that does not fold
 * (a plain UPDATE of the parent row), which never waits for a fold.
 */
bool
lock_parent_for_fold(int64 parent_id, bool wait)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (((uint64) parent_id) >> 32),
						 (uint32) parent_id, 3);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) !=
		LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Whether parent_id still exists, before a difference is left for it:
 * false when it is gone, its children with it (then its waiting
 * differences are dropped, as no fold will take them).  Raises 22023 when
 * the job is not a parent.  Must be connected to SPI.
 */
bool
parent_still_there(Oid nspid, int64 parent_id)
{
	Datum		values[1] = {Int64GetDatum(parent_id)};
	bool		isnull;

	job_run_plan(job_plan(PLAN_PARENT_KIND, nspid), values, NULL, false,
				 SPI_OK_SELECT, "reading the parent");
	if (SPI_processed == 0)
	{
		job_run_plan(job_plan(PLAN_DROP_ORPHAN_DELTAS, nspid), values, NULL,
					 false, SPI_OK_DELETE, "dropping orphaned differences");
		return false;
	}
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)))
		job_report_not_parent(parent_id);
	return true;
}

/*
 * With delta (the rollup), adds that difference to parent_id; without
 * (the folder, batchjob_fold), folds every difference waiting for it.
 * Returns false when, without wait, another transaction holds the right to
 * fold: nothing was done.  True otherwise, also when the parent no longer exists.  Raises
 * 22023 when the job is not a parent.  Must be connected to SPI.
 */
bool
fold_parent(Oid nspid, bool v11, int64 parent_id, const int64 *delta,
			bool wait)
{
	Datum		values[1 + FOLD_NVALUES];
	int64		sum[FOLD_NVALUES];
	bool		isnull;
	bool		any = false;
	int			rc;
	int			i;
	uint64		row;

	values[0] = Int64GetDatum(parent_id);
	if (!lock_parent_for_fold(parent_id, wait))
	{
		/* another transaction is folding into it: defer, if still there */
		return !parent_still_there(nspid, parent_id);
	}

	/*
	 * The statement's own difference plus every one waiting.  Taking the
	 * waiting ones matters even on the rollup's path: a child's earlier
	 * change (its claim, say) may wait there, and adding only the later one
	 * (its completion) would take a counter below zero.
	 */
	for (i = 0; i < FOLD_NVALUES; i++)
	{
		sum[i] = delta ? delta[i] : 0;
		any |= (sum[i] != 0);
	}
	job_run_plan(job_plan(PLAN_TAKE_WAITING, nspid), values, NULL, false,
				 SPI_OK_DELETE_RETURNING, "taking the waiting differences");
	rows_folded += SPI_processed;
	for (row = 0; row < SPI_processed; row++)
	{
		for (i = 0; i < FOLD_NVALUES; i++)
		{
			job_add_checked(&sum[i],
							DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row],
														SPI_tuptable->tupdesc,
														i + 1, &isnull)),
							parent_id);
		}
		any = true;
	}
	if (!any)
		return true;			/* nothing to fold */

	for (i = 0; i < FOLD_NVALUES; i++)
		values[1 + i] = Int64GetDatum(sum[i]);
	rc = SPI_execute_plan(job_plan(v11 ? PLAN_ROLLUP_APPLY_V11 : PLAN_ROLLUP_APPLY,
								   nspid),
						  values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "rollup of parent job " INT64_FORMAT " failed: %s",
			 parent_id, SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return true;			/* gone, its children with it */

	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)))
		job_report_not_parent(parent_id);

	/* fail_fast: the parent has a failed child and unfinished ones */
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
								   SPI_tuptable->tupdesc, 2, &isnull)) &&
		!isnull)
		(void) cancel_descendants(nspid, parent_id, true);
	return true;
}

/*
 * Records a difference the rollup could not fold (another transaction holds
 * the right to fold, or the folder is busy); the folder (or the next
 * rollup of that parent) folds it.
 *
 * Under load every single-job change comes here, so the row goes in with
 * heap_insert and its index entries without an executor: batch_job_deltas
 * is the extension's own table, with plain columns, no triggers, no
 * constraints but NOT NULL, and one plain index.  The privilege check the
 * executor would make is made here.
 */
void
defer_delta(Oid nspid, int64 parent_id, const int64 *delta)
{
	Oid			relid = get_relname_relid("batch_job_deltas", nspid);
	Relation	rel;
	TupleDesc	desc;
	Datum		values[1 + FOLD_NVALUES];
	bool		nulls[1 + FOLD_NVALUES];
	HeapTuple	tup;
	AclResult	aclresult;
	int			i;

	if (!OidIsValid(relid))
		elog(ERROR, "batchjob: table batch_job_deltas is missing");
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, "batch_job_deltas");

	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	if (desc->natts != 1 + FOLD_NVALUES)
		elog(ERROR, "batchjob: table batch_job_deltas has %d columns, expected %d",
			 desc->natts, 1 + FOLD_NVALUES);
	values[0] = Int64GetDatum(parent_id);
	nulls[0] = false;
	for (i = 0; i < FOLD_NVALUES; i++)
	{
		values[1 + i] = Int64GetDatum(delta[i]);
		nulls[1 + i] = false;
	}
	tup = heap_form_tuple(desc, values, nulls);
	CatalogTupleInsert(rel, tup);
	heap_freetuple(tup);
	table_close(rel, NoLock);
	deferred_in_xact = true;
}

/*
 * The folder this backend started last.  A burst of committing workers can
 * all find no folder holding the lock yet; each backend starts at most one
 * folder at a time, so the burst cannot use up the worker slots.
 */
static BackgroundWorkerHandle *last_folder = NULL;

/*
 * Makes sure differences already waiting get folded even if no new one is
 * deferred: after a crash or a restart, or a folder that was terminated,
 * nothing else would start a folder.  Called by the functions workers poll
 * (claim, reap); costs one look at the usually empty deltas table, at
 * most once a second.  Must be connected to SPI.
 */
void
ensure_folder(Oid nspid)
{
	static TimestampTz last_look = 0;
	TimestampTz now = GetCurrentTimestamp();

	/* once a second per backend is plenty: workers poll all the time */
	if (deferred_in_xact ||
		!TimestampDifferenceExceeds(last_look, now, 1000))
		return;
	last_look = now;
	job_run_plan(job_plan(PLAN_ANY_DELTA, nspid), NULL, NULL, true,
				 SPI_OK_SELECT, "looking for waiting differences");
	if (SPI_processed > 0)
		deferred_in_xact = true;	/* the pre-commit check does the rest */
}

static void
start_folder(Oid dbid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	pid_t		pid;
	MemoryContext old;

	if (last_folder != NULL)
	{
		BgwHandleStatus status = GetBackgroundWorkerPid(last_folder, &pid);

		if (status == BGWH_NOT_YET_STARTED || status == BGWH_STARTED)
			return;
		pfree(last_folder);
		last_folder = NULL;
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "batchjob");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "batchjob_folder_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "batchjob folder for database %u",
			 dbid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "batchjob folder");
	worker.bgw_main_arg = ObjectIdGetDatum(dbid);
	worker.bgw_notify_pid = 0;

	/*
	 * No free worker slot: the difference waits for the next rollup of its
	 * parent, the next folder, or batchjob_fold().  The transaction has
	 * committed, so this is for the server log only.
	 */
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(LOG,
				(errmsg("batchjob could not start its folder background worker"),
				 errhint("Raise max_worker_processes, or call batchjob_fold() from time to time.")));
	else
		last_folder = handle;
	MemoryContextSwitchTo(old);
}

/*
 * Before commit: if this transaction deferred a difference and no folder is
 * running, remember to start one; after commit, start it (then the folder's
 * first look sees the difference).
 */
static void
fold_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (deferred_in_xact && !IsBackgroundWorker)
			{
				LOCKTAG		tag;

				folder_locktag(&tag, MyDatabaseId);
				if (lock_free_now(&tag, ExclusiveLock))
					start_folder_at_commit = true;
			}
			break;
		case XACT_EVENT_COMMIT:
			if (start_folder_at_commit)
				start_folder(MyDatabaseId);
			deferred_in_xact = false;
			start_folder_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
			deferred_in_xact = false;
			start_folder_at_commit = false;
			break;
		default:
			break;
	}
}

void
batchjob_init_fold(void)
{
	RegisterXactCallback(fold_xact_callback, NULL);
	DefineCustomBoolVariable("batchjob.defer_when_busy",
							 "Leaves rollup differences to the folder while it is busy.",
							 "Off: every rollup updates its parent at once unless another transaction is folding into it.",
							 &defer_when_busy,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/*
 * Folds what is waiting for every parent that has a difference, skipping
 * parents another transaction holds (it is folding them).  Returns how many
 * parents are left with differences.  Must be connected to SPI.
 */
static uint64
fold_waiting(Oid nspid, bool v11, uint64 *nfolded)
{
	uint64		nparents;
	uint64		left = 0;
	uint64		i;
	int64	   *parents;
	bool		isnull;

	job_run_plan(job_plan(PLAN_PENDING_PARENTS, nspid), NULL, NULL, false,
				 SPI_OK_SELECT, "finding waiting differences");
	nparents = SPI_processed;
	parents = palloc(sizeof(int64) * Max(nparents, 1));
	for (i = 0; i < nparents; i++)
		parents[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 1,
												 &isnull));
	for (i = 0; i < nparents; i++)
	{
		/* a deleted parent's differences go too, either way */
		if (!fold_parent(nspid, v11, parents[i], NULL, false))
		{
			left++;
			continue;
		}
		if (nfolded)
			(*nfolded)++;
	}
	pfree(parents);
	return left;
}

/*
 * batchjob_fold(parent_job_id DEFAULT NULL): folds the waiting differences
 * of one parent, waiting for its lock if a worker holds it, or of every
 * parent (skipping those held right now).  Returns how many parents it
 * folded.  Never needed for correctness; handy in tests and after a restore.
 */
Datum
batchjob_fold(PG_FUNCTION_ARGS)
{
	Oid			nspid = job_function_namespace(fcinfo);
	bool		v11 = job_schema_is_v11(nspid);
	uint64		n = 0;

	job_spi_connect();
	if (PG_ARGISNULL(0))
		(void) fold_waiting(nspid, v11, &n);
	else
	{
		(void) fold_parent(nspid, v11, PG_GETARG_INT64(0), NULL, true);
		n = 1;
	}
	job_spi_finish();
	PG_RETURN_INT64((int64) n);
}

/*
 * One folder round in its own transaction, as the extension's owner.
 * Returns how many parents still have differences (held by others), or -1
 * when the extension is not installed in this database.
 */
static int64
folder_round(bool final_sweep, bool *idle, uint64 *nrows)
{
	int64		left = -1;
	uint64		nfolded = 0;
	bool		isnull;
	Oid			save_userid;
	int			save_sec_context;

	rows_folded = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (final_sweep)
	{
		/* wait out every transaction still writing differences */
		if (SPI_execute("SELECT c.oid FROM pg_catalog.pg_class c"
						" JOIN pg_catalog.pg_extension e"
						" ON c.relnamespace OPERATOR(pg_catalog.=) e.extnamespace"
						" WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob'"
						" AND c.relname OPERATOR(pg_catalog.=) 'batch_job_deltas'",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not look up batch_job_deltas");
		if (SPI_processed > 0)
		{
			LOCKTAG		tag;
			Oid			relid;

			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1,
												   &isnull));
			SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
			WaitForLockers(tag, ShareLock, false);
		}
	}

	if (SPI_execute("SELECT extnamespace, extowner FROM pg_catalog.pg_extension"
					" WHERE extname OPERATOR(pg_catalog.=) 'batchjob'",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the batchjob extension");
	if (SPI_processed > 0)
	{
		Oid			nspid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc,
														   1, &isnull));
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc,
														   2, &isnull));

		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		left = (int64) fold_waiting(nspid, job_schema_is_v11(nspid), &nfolded);
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	*idle = (nfolded == 0 && left <= 0);
	*nrows = rows_folded;
	return left;
}

/*
 * The folder: a dynamic background worker for one database (main_arg),
 * started by a transaction that deferred a difference.  It exits when it
 * finds another folder running, when the extension is gone, or after a
 * quiet spell with nothing to fold.
 */
void
batchjob_folder_main(Datum main_arg)
{
	Oid			dbid = DatumGetObjectId(main_arg);
	LOCKTAG		tag;
	LOCKTAG		busy_tag;
	bool		busy = false;
	TimestampTz last_work;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("batchjob folder");

	/*
	 * The database's own search_path (ALTER DATABASE ... SET, which its
	 * owner may do) must not reach the statements the folder prepares and
	 * runs as the extension's owner.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	/*
	 * Under load batch_job_deltas is a queue: thousands of rows a second
	 * go in and out, and its statistics say little about the next round.
	 * A sequential or bitmap scan there reads every dead row each time a
	 * parent is folded; a plain index scan reads only the parent's entries
	 * and marks the dead ones, so later scans and inserts skip them.  Every
	 * statement the folder runs finds its rows through an index.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("enable_bitmapscan", "off", PGC_SUSET, PGC_S_OVERRIDE);

	folder_locktag(&tag, dbid);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		proc_exit(0);			/* another folder serves this database */
	folder_busy_locktag(&busy_tag, dbid);

	last_work = GetCurrentTimestamp();
	for (;;)
	{
		bool		idle;
		int64		left;
		uint64		nrows;

		CHECK_FOR_INTERRUPTS();
		left = folder_round(false, &idle, &nrows);
		if (left < 0)
			break;

		/*
		 * Take over the rollups while changes come fast, give them back
		 * when they slow down.  The lock is never waited for: rollups hold
		 * it only for an instant, and the next round tries again.
		 */
		if (!busy && nrows >= FOLDER_BUSY_ENTER_ROWS)
			busy = LockAcquire(&busy_tag, ExclusiveLock, true, true) !=
				LOCKACQUIRE_NOT_AVAIL;
		else if (busy &&
				 nrows < FOLDER_BUSY_STAY_ROWS * FOLDER_BUSY_NAP_MS / FOLDER_NAP_MS)
		{
			LockRelease(&busy_tag, ExclusiveLock, true);
			busy = false;
		}

		if (!idle)
			last_work = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(),
											FOLDER_QUIET_MS))
		{
			/* hand over: see the file header for why this is enough */
			Assert(!busy);
			LockRelease(&tag, ExclusiveLock, true);
			left = folder_round(true, &idle, &nrows);
			if (left <= 0)
				break;
			if (LockAcquire(&tag, ExclusiveLock, true, true) ==
				LOCKACQUIRE_NOT_AVAIL)
				break;
			last_work = GetCurrentTimestamp();
		}

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 busy ? FOLDER_BUSY_NAP_MS : FOLDER_NAP_MS,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}
