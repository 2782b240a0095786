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
 * before it commits (or prepares), that a folder is running for its
 * database: a dynamic background worker that folds whatever is waiting, a
 * few milliseconds at a time, and exits after a quiet spell.  The folder
 * holds a session advisory lock while it runs; a committing transaction
 * that finds the lock free starts a folder and waits until the folder holds
 * it, under a second lock that lets one backend at a time do so, so a burst
 * of commits starts one folder.  The folder may well start before the
 * transaction has committed: it stays a quiet spell, and sees the
 * difference at a later round.  When no background worker slot is free,
 * the transaction folds its own differences before it commits instead,
 * waiting for each parent as a plain UPDATE would.  A folder about to exit
 * first releases the lock, then waits for every transaction still writing
 * batch_job_deltas (prepared ones too) and sweeps once more: a transaction
 * that saw the old folder alive is one of those, and one that did not
 * starts the next folder.  It stays while such a transaction is open (a
 * worker's, say, that claimed a job and works inside its transaction),
 * rather than wait for it beside the next folder.
 *
 * Faults.  Nothing but a superuser can stop a folder: its locks are out of
 * reach of the SQL advisory lock functions, it sets what it depends on
 * (isolation level, read-write, timeouts, search_path) itself, and it folds
 * each parent in a subtransaction with a short lock timeout, so one parent
 * whose fold fails or whose row is held cannot stop the others.
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
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "batchjob.h"

BJ_FUNCTION_INFO_V1(batchjob_fold);
BJ_FUNCTION_INFO_V1(batchjob_hold_folder_busy);

PGDLLEXPORT void batchjob_folder_main(Datum main_arg);

/*
 * The statements on batch_job_deltas, and the ones that read a parent
 * together with what waits for it: every one of them is here.
 */

/*
 * A parent's figures after a fold: the stored ones plus a difference.  A
 * parent without children keeps figures of its own (a total given at
 * creation); its first children replace them rather than add to them.
 * This is the writer of the rule; the view batch_job_figures
 * (batchjob--1.1--1.2.sql) is its one reader, which adds what waits in
 * batch_job_deltas the same way and which batch_job_progress,
 * batchjob_verify() and batchjob_child_counts read.  test/verify.sql
 * checks that the two agree (a fold stores what the view showed).
 */
#define ADD_FIGURES(pending, processing, completed, failed, cancelled, \
					total, processed, success, errors) \
	" child_pending = t.child_pending + " pending "," \
	" child_processing = t.child_processing + " processing "," \
	" child_completed = t.child_completed + " completed "," \
	" child_failed = t.child_failed + " failed "," \
	" child_cancelled = t.child_cancelled + " cancelled "," \
	" total_records = CASE WHEN " NO_CHILDREN_YET_T \
	"  THEN 0 ELSE coalesce(t.total_records, 0) END + " total "," \
	" processed_records = CASE WHEN " NO_CHILDREN_YET_T \
	"  THEN 0 ELSE t.processed_records END + " processed "," \
	" success_count = CASE WHEN " NO_CHILDREN_YET_T \
	"  THEN 0 ELSE t.success_count END + " success "," \
	" error_count = CASE WHEN " NO_CHILDREN_YET_T \
	"  THEN 0 ELSE t.error_count END + " errors

#define NO_CHILDREN_YET_T JOB_CHILDREN_SQL("t.") " = 0"

/*
 * A fold: a difference ($2..$10) into parent $1, by one plain UPDATE.  The
 * caller holds the right to fold, so no other fold runs; the UPDATE takes
 * the row lock (waiting, at most, behind a plain UPDATE of the parent).
 * The difference is the statement's own plus whatever take_waiting took
 * out of batch_job_deltas just before.  Returns whether the job is a parent
 * and, from 1.1 on, whether a fail_fast parent now has a failed child and
 * unfinished ones.
 */
#define FOLD_APPLY_SQL(fail_fast_pending) \
	"UPDATE %1$s t SET" \
	ADD_FIGURES("$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10") \
	" WHERE t.job_id = $1 RETURNING t.is_parent, " fail_fast_pending

#define Anum_fold_apply_is_parent		1
#define Anum_fold_apply_fail_fast		2

#define FOLD_ARGTYPES \
	{INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, \
	 INT8OID, INT8OID, INT8OID, INT8OID}

static JobStatement fold_apply = {
	.sql = FOLD_APPLY_SQL("t.on_child_failure = 'fail_fast'"
						  " AND t.child_failed > 0"
						  " AND t.child_pending + t.child_processing > 0"),
	.nargs = 10, .argtypes = FOLD_ARGTYPES
};

/* a 1.0 schema has no fail_fast */
static JobStatement fold_apply_1_0 = {
	.sql = FOLD_APPLY_SQL("false"), .nargs = 10, .argtypes = FOLD_ARGTYPES
};

/*
 * The differences waiting for parent $1, taken out to be folded in by the
 * same transaction: each is folded exactly once, and those committed after
 * this statement's snapshot wait for the next fold.  An index probe that
 * usually finds nothing.  Columns in FOLD_NVALUES order.
 */
static JobStatement take_waiting = {
	.sql = "DELETE FROM %2$s WHERE parent_job_id = $1 RETURNING child_pending,"
	" child_processing, child_completed, child_failed, child_cancelled,"
	" total_records, processed_records, success_count, error_count",
	.nargs = 1, .argtypes = {INT8OID}
};

/* the first column of a difference; the others follow in FOLD_NVALUES order */
#define Anum_waiting_child_pending		1

/* a parent as job_fetch_parent reads it (ParentInfo) */
static JobStatement parent_info = {
	.sql = "SELECT is_parent, criteria, priority, created_by"
	" FROM %1$s WHERE job_id = $1",
	.nargs = 1, .argtypes = {INT8OID}
};

#define Anum_parent_info_is_parent		1
#define Anum_parent_info_criteria		2
#define Anum_parent_info_priority		3
#define Anum_parent_info_created_by		4

/*
 * A parent's children by status, with the differences not folded in yet
 * (batchjob_child_counts), from the view that computes a parent's
 * effective figures.  One probe of the jobs' primary key and one of
 * batch_job_deltas_parent_idx.
 */
static JobStatement parent_counts = {
	.sql = "SELECT pending, processing, completed, failed, cancelled, children"
	" FROM %4$s WHERE job_id = $1",
	.nargs = 1, .argtypes = {INT8OID}
};

#define Anum_parent_counts_pending		1	/* the others follow in
											 * JobStatus order */
#define Anum_parent_counts_children		6

/*
 * The same for the 1.0 and 1.1 schemas, which have no batch_job_figures
 * (a database runs them with this library until ALTER EXTENSION UPDATE):
 * the sums those versions computed, columns as parent_counts but the last.
 */
static JobStatement parent_counts_1_1 = {
	.sql = "SELECT p.child_pending + d.pending, p.child_processing + d.processing,"
	" p.child_completed + d.completed, p.child_failed + d.failed,"
	" p.child_cancelled + d.cancelled"
	" FROM %1$s p, LATERAL (SELECT"
	"  coalesce(sum(child_pending), 0)::int8 AS pending,"
	"  coalesce(sum(child_processing), 0)::int8 AS processing,"
	"  coalesce(sum(child_completed), 0)::int8 AS completed,"
	"  coalesce(sum(child_failed), 0)::int8 AS failed,"
	"  coalesce(sum(child_cancelled), 0)::int8 AS cancelled"
	"  FROM %2$s WHERE parent_job_id = $1) d"
	" WHERE p.job_id = $1 AND p.is_parent",
	.nargs = 1, .argtypes = {INT8OID}
};

/* a parent's row lock, for the paths that change its set of children */
static JobStatement lock_parent = {
	.sql = "SELECT is_parent FROM %1$s WHERE job_id = $1 FOR NO KEY UPDATE",
	.nargs = 1, .argtypes = {INT8OID}
};

#define Anum_lock_parent_is_parent		1

/* whether $1 exists, and is a parent, before a difference is left for it */
static JobStatement parent_kind = {
	.sql = "SELECT is_parent FROM %1$s WHERE job_id = $1",
	.nargs = 1, .argtypes = {INT8OID}
};

#define Anum_parent_kind_is_parent		1

/*
 * A parent's figures recounted from its children (batchjob_refresh_parent).
 * One statement, so one snapshot: the differences deleted are exactly those
 * of the child changes the sums see.  Columns in FOLD_NVALUES order.
 */
static JobStatement recount = {
	.sql = "WITH folded AS (DELETE FROM %2$s WHERE parent_job_id = $1)"
	" SELECT count(*) FILTER (WHERE status = 'PENDING'),"
	" count(*) FILTER (WHERE status = 'PROCESSING'),"
	" count(*) FILTER (WHERE status = 'COMPLETED'),"
	" count(*) FILTER (WHERE status = 'FAILED'),"
	" count(*) FILTER (WHERE status = 'CANCELLED'),"
	" coalesce(sum(total_records), 0)::int8,"
	" coalesce(sum(processed_records), 0)::int8,"
	" coalesce(sum(success_count), 0)::int8,"
	" coalesce(sum(error_count), 0)::int8"
	" FROM %1$s WHERE parent_job_id = $1",
	.nargs = 1, .argtypes = {INT8OID}
};

/* the first column of the recount; the others follow in FOLD_NVALUES order */
#define Anum_recount_pending			1

/* TRUNCATE of batch_jobs: no difference can still be meant for anything */
static JobStatement drop_all_deltas = {
	.sql = "DELETE FROM %2$s", .nargs = 0
};

/* is any difference waiting at all?  (ensure_folder) */
static JobStatement any_delta = {
	.sql = "SELECT FROM %2$s LIMIT 1", .nargs = 0
};

/* a round's worth of parents, after $1: see FOLDER_ROUND_PARENTS */
static JobStatement pending_parents = {
	.sql = "SELECT DISTINCT parent_job_id FROM %2$s WHERE parent_job_id > $1"
	" ORDER BY 1 LIMIT 32",
	.nargs = 1, .argtypes = {INT8OID}
};

#define Anum_pending_parents_parent_job_id	1

/* the differences left for a parent that is gone */
static JobStatement drop_orphan_deltas = {
	.sql = "DELETE FROM %2$s WHERE parent_job_id = $1"
	" AND NOT EXISTS (SELECT FROM %1$s WHERE job_id = $1)",
	.nargs = 1, .argtypes = {INT8OID}
};

/* does any difference wait for parent $1?  An index probe */
static JobStatement waiting_for_parent = {
	.sql = "SELECT FROM %2$s WHERE parent_job_id = $1 LIMIT 1",
	.nargs = 1, .argtypes = {INT8OID}
};

/* a fail_fast parent's unfinished descendants (batchjob.h) */
static JobStatement cancel_descendants_skip_locked = {
	.sql = CANCEL_DESCENDANTS_SQL(" SKIP LOCKED"),
	.nargs = 1, .argtypes = {INT8OID}
};

/*
 * The extension in the folder's database: its schema, its owner (whom the
 * folder works as) and its batch_job_deltas.
 */
#define FOLDER_EXTENSION_SQL \
	"SELECT e.extnamespace, e.extowner, c.oid" \
	" FROM pg_catalog.pg_extension e" \
	" LEFT JOIN pg_catalog.pg_class c" \
	" ON c.relnamespace OPERATOR(pg_catalog.=) e.extnamespace" \
	" AND c.relname OPERATOR(pg_catalog.=) 'batch_job_deltas'" \
	" WHERE e.extname OPERATOR(pg_catalog.=) 'batchjob'"

static SPIPlanPtr folder_extension_plan = NULL;

#define Anum_folder_extension_nspid		1
#define Anum_folder_extension_owner		2
#define Anum_folder_extension_deltas	3

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

/*
 * Parents a folder round takes on, each in a subtransaction of the round's
 * transaction.  Below PGPROC_MAX_CACHED_SUBXIDS (64), so that a round never
 * overflows the subtransaction cache every other snapshot would then pay
 * for.  The next round starts after the last parent of this one, so a
 * backlog of low parent ids cannot starve the higher ones.
 */
#define FOLDER_ROUND_PARENTS	32

/*
 * How long the folder waits for a parent's row lock before it leaves the
 * parent for a later round: a transaction holding the row (an admin's
 * UPDATE, say) must not stop every other parent from folding, nor keep the
 * busy lock held meanwhile.
 */
#define FOLDER_LOCK_TIMEOUT "10ms"

/*
 * A committing transaction that starts a folder waits at most this long
 * for it to hold its lock; past that it folds its differences itself.
 */
#define FOLDER_START_TIMEOUT_MS 10000

/*
 * A difference older than this is reported by batchjob_verify() and, once,
 * in the server log (README, "Concurrency and guarantees").
 */
#define FOLD_BOUND_SECS		60

/*
 * batchjob's advisory locks.  All live in a key space the SQL advisory lock
 * functions cannot reach: those put 1 (bigint key) or 2 (two int keys) in
 * the tag's fourth field, batchjob puts the kinds below, so no role can
 * take or hold one of these by calling pg_advisory_lock().  The first two
 * fields are "batc" "hjob" for the database-wide locks, and the parent's id
 * for the right to fold into it.  pg_locks shows the kind as objsubid.
 */
#define BJ_LOCK_KEY1		0x62617463	/* "batc" */
#define BJ_LOCK_KEY2		0x686a6f62	/* "hjob" */

typedef enum BatchjobLock
{
	BJ_LOCK_FOLD_RIGHT = 3,		/* per parent: the right to fold into it */
	BJ_LOCK_FOLDER_BUSY = 4,	/* a folder has taken the rollups over */
	BJ_LOCK_FOLDER = 5,			/* a folder serves the database */
	BJ_LOCK_FOLDER_START = 6,	/* a backend is starting a folder */
	BJ_LOCK_ROLLUP_SLOT = 7		/* 7 and 8: the rollup slots (below) */
} BatchjobLock;

/*
 * The rollup slots: the hand-off by rate across the database (issue 16).
 * A folder takes the rollups over only once differences wait, which
 * happens only when two transactions fold into one parent at once; workers
 * spread over many parents never meet, and each paid a parent UPDATE per
 * change, the cost of a change itself.  So each transaction that rolls up
 * takes one of ROLLUP_SLOTS transaction-level locks without waiting, and
 * holds it to its end; one that finds every slot held (that many other
 * transactions are rolling up at this moment) leaves its difference to
 * the folder, as under a busy folder.  A session working alone, or with
 * one other, always gets a slot and folds at once, so its stored parent
 * row shows its own change at once; the folder (started by the first
 * deferral) takes the rollups over if the rate stays high.
 */
#define ROLLUP_SLOTS		2

/*
 * The tag of one of the database-wide locks: every one is built here, so
 * that the key space stays the one described above.
 */
static void
batchjob_locktag(LOCKTAG *tag, Oid dbid, BatchjobLock kind)
{
	Assert(kind != BJ_LOCK_FOLD_RIGHT);
	SET_LOCKTAG_ADVISORY(*tag, dbid, BJ_LOCK_KEY1, BJ_LOCK_KEY2, kind);
}

/* Did this transaction defer a difference?  Reset at every transaction end. */
static bool deferred_in_xact = false;

/* Did a claim or a reap find differences left over (a crash, say)? */
static bool leftovers_in_xact = false;

/*
 * The parents this transaction deferred differences for, the schema and
 * the role it did so as: what it folds itself before committing when no
 * folder can be started.  In TopTransactionContext.
 */
static List *deferred_parents = NIL;
static Oid	deferred_nspid = InvalidOid;
static Oid	deferred_userid = InvalidOid;

/* Waiting differences this backend's folds took out; the folder's gauge. */
static uint64 rows_folded = 0;

/* Is this process a folder holding its database's folder lock? */
static bool folder_holds_lock = false;

/*
 * batchjob.defer_when_busy: do rollups leave their work to a busy folder?
 * Defined in _PG_init.
 */
bool		batchjob_defer_when_busy = true;

/*
 * Is nobody else holding the lock in a conflicting mode?  Takes it without
 * waiting and lets go at once.  A backend's own locks never conflict with
 * its requests, so a lock this backend holds counts as free.
 */
static bool
lock_free_now(const LOCKTAG *tag, LOCKMODE mode)
{
	if (LockAcquire(tag, mode, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	LockRelease(tag, mode, false);
	return true;
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

	if (!batchjob_defer_when_busy)
		return false;
	batchjob_locktag(&tag, MyDatabaseId, BJ_LOCK_FOLDER_BUSY);
	return !lock_free_now(&tag, ShareLock);
}

/* The transaction that took a rollup slot, and whether it got one. */
static LocalTransactionId slot_lxid = InvalidLocalTransactionId;
static bool slot_held = false;

/*
 * Are so many other transactions rolling up right now that this one should
 * leave its difference to the folder (see ROLLUP_SLOTS)?  Decided once per
 * transaction: the first rollup tries for a slot, and one that got it keeps
 * it to the end.  Never waits.  Never with batchjob.defer_when_busy off,
 * and never in the folder, which is what the differences are left to.
 * A slot taken in a subtransaction that rolls back goes with it, while
 * this transaction still counts itself as holding one: its later rollups
 * fold at once, which is always exact; only the hand-off is less eager.
 */
bool
rollups_crowded(void)
{
	int			s;

	if (!batchjob_defer_when_busy || folder_holds_lock)
		return false;
	if (slot_lxid != BJ_LOCAL_XID())
	{
		slot_held = false;
		for (s = 0; s < ROLLUP_SLOTS && !slot_held; s++)
		{
			LOCKTAG		tag;

			batchjob_locktag(&tag, MyDatabaseId,
							 (BatchjobLock) (BJ_LOCK_ROLLUP_SLOT + s));
			slot_held = LockAcquire(&tag, ExclusiveLock, false, true) !=
				LOCKACQUIRE_NOT_AVAIL;
		}
		slot_lxid = BJ_LOCAL_XID();
	}
	return !slot_held;
}

/*
 * The right to fold into a parent: a transaction-level advisory lock on the
 * parent's id, in batchjob's key space (above), so it never meets the
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

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
						 (uint32) (((uint64) parent_id) >> 32),
						 (uint32) parent_id, BJ_LOCK_FOLD_RIGHT);
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

	job_run(&parent_kind, nspid, values, NULL, false, SPI_OK_SELECT,
			"reading the parent");
	if (SPI_processed == 0)
	{
		job_run(&drop_orphan_deltas, nspid, values, NULL, false,
				SPI_OK_DELETE, "dropping orphaned differences");
		return false;
	}
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc,
									Anum_parent_kind_is_parent, &isnull)))
		job_report_not_parent(parent_id);
	return true;
}

/*
 * Reads the job a parent_job_id argument names and checks that it is a
 * parent: 23503 when there is no such job, 22023 when it is not a parent.
 * With lock, the caller takes the right to fold into the parent and then
 * its row lock (FOR NO KEY UPDATE), waiting for both; this serializes
 * callers that are about to change its set of children, and keeps workers
 * that find the parent busy from waiting behind them.  Without lock, fills
 * *info (which may be NULL) with what a new child takes from the parent.
 * Must be connected to SPI.
 */
void
job_fetch_parent(Oid nspid, int64 parent_id, bool lock, bool read_only,
				 ParentInfo *info)
{
	Datum		values[1] = {Int64GetDatum(parent_id)};
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;

	Assert(!(lock && info != NULL));
	if (lock)
		(void) lock_parent_for_fold(parent_id, true);
	job_run(lock ? &lock_parent : &parent_info, nspid, values, NULL,
			read_only, SPI_OK_SELECT, "reading the parent");
	if (SPI_processed == 0)
		job_report_missing(MISSING_PARENT, parent_id);
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (!DatumGetBool(SPI_getbinval(row, desc,
									lock ? Anum_lock_parent_is_parent :
									Anum_parent_info_is_parent, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job " INT64_FORMAT " is not a parent job", parent_id),
				 errhint("Create parents with batchjob_create_parent().")));
	if (info == NULL)
		return;
	info->criteria = SPI_getbinval(row, desc, Anum_parent_info_criteria,
								   &info->criteria_null);
	info->priority = SPI_getbinval(row, desc, Anum_parent_info_priority,
								   &isnull);
	info->created_by = SPI_getbinval(row, desc, Anum_parent_info_created_by,
									 &info->created_by_null);
}

/*
 * A parent's children by status, the differences waiting for it included,
 * read as batchjob_child_counts reports them; returns how many children
 * they count.  Raises as job_fetch_parent does when parent_id names no
 * parent.  Reads only (read_only SPI, the caller's snapshot).  Must be
 * connected to SPI.
 */
int64
parent_child_counts(Oid nspid, int64 parent_id, ChildCounts *counts)
{
	Datum		values[1] = {Int64GetDatum(parent_id)};
	bool		v12 = job_schema(nspid) >= JOB_SCHEMA_1_2;
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	int			i;

	job_run(v12 ? &parent_counts : &parent_counts_1_1, nspid, values, NULL,
			true, SPI_OK_SELECT, "counting the children");
	if (SPI_processed == 0)
	{
		/* no such parent: say which way, as every function does */
		job_fetch_parent(nspid, parent_id, false, true, NULL);
		elog(ERROR, "parent job " INT64_FORMAT " has no figures", parent_id);
	}
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	for (i = 0; i < JOB_NSTATUS; i++)
		counts->n[i] = DatumGetInt64(SPI_getbinval(row, desc,
												   Anum_parent_counts_pending + i,
												   &isnull));
	if (!v12)
		return child_counts_total(counts);
	return DatumGetInt64(SPI_getbinval(row, desc, Anum_parent_counts_children,
									   &isnull));
}

/*
 * A parent's figures recounted from all its children, in FOLD_NVALUES
 * order, dropping the differences waiting for it in the same snapshot
 * (the sums already include them); returns how many children it has.  The
 * caller holds the parent's lock (job_fetch_parent with lock).  Must be
 * connected to SPI.
 */
int64
recount_children(Oid nspid, int64 parent_id, int64 figures[FOLD_NVALUES])
{
	Datum		values[1] = {Int64GetDatum(parent_id)};
	ChildCounts counts;
	int			i;

	job_run(&recount, nspid, values, NULL, false, SPI_OK_SELECT,
			"summing the children");
	for (i = 0; i < FOLD_NVALUES; i++)
	{
		bool		isnull;

		figures[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc,
												 Anum_recount_pending + i,
												 &isnull));
		if (i < JOB_NSTATUS)
			counts.n[i] = figures[i];
	}
	return child_counts_total(&counts);
}

/*
 * Whether any difference waits for parent_id: an index probe.  Must be
 * connected to SPI.
 */
bool
differences_wait_for(Oid nspid, int64 parent_id)
{
	Datum		values[1] = {Int64GetDatum(parent_id)};

	job_run(&waiting_for_parent, nspid, values, NULL, false, SPI_OK_SELECT,
			"looking for waiting differences");
	return SPI_processed > 0;
}

/*
 * Drops every waiting difference: after TRUNCATE of batch_jobs none can be
 * meant for anything.  Must be connected to SPI.
 */
void
drop_all_differences(Oid nspid)
{
	job_run(&drop_all_deltas, nspid, NULL, NULL, false, SPI_OK_DELETE,
			"dropping waiting differences");
}

/*
 * With delta (the rollup), adds that difference to parent_id; without
 * (the folder, batchjob_fold), folds every difference waiting for it.
 * Returns false when, without wait, another transaction holds the right to
 * fold: nothing was done.  True otherwise, also when the parent no longer exists.  Raises
 * 22023 when the job is not a parent.  Must be connected to SPI.
 */
bool
fold_parent(Oid nspid, int64 parent_id, const int64 *delta, bool wait)
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
	job_run(&take_waiting, nspid, values, NULL, false,
			SPI_OK_DELETE_RETURNING, "taking the waiting differences");
	rows_folded += SPI_processed;
	for (row = 0; row < SPI_processed; row++)
	{
		for (i = 0; i < FOLD_NVALUES; i++)
		{
			job_add_checked(&sum[i],
							DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row],
														SPI_tuptable->tupdesc,
														Anum_waiting_child_pending + i,
														&isnull)),
							parent_id);
		}
		any = true;
	}
	if (!any)
		return true;			/* nothing to fold */

	for (i = 0; i < FOLD_NVALUES; i++)
		values[1 + i] = Int64GetDatum(sum[i]);
	rc = SPI_execute_plan(job_plan(job_schema(nspid) >= JOB_SCHEMA_1_1 ?
								   &fold_apply : &fold_apply_1_0, nspid),
						  values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "rollup of parent job " INT64_FORMAT " failed: %s",
			 parent_id, SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return true;			/* gone, its children with it */

	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc,
									Anum_fold_apply_is_parent, &isnull)))
		job_report_not_parent(parent_id);

	/*
	 * fail_fast: the parent has a failed child and unfinished ones.  Rows
	 * another transaction holds are left alone: they are being finished
	 * right now, and waiting for them while holding the parent's lock could
	 * deadlock.
	 */
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
								   SPI_tuptable->tupdesc,
								   Anum_fold_apply_fail_fast, &isnull)) &&
		!isnull)
	{
		job_run(&cancel_descendants_skip_locked, nspid, values, NULL, false,
				SPI_OK_UPDATE, "cancelling the jobs below a fail_fast parent");

		/*
		 * The cancel's own rollup defers while the folder is busy: it does
		 * not know that this transaction already holds the right to fold.
		 * Take that difference in now, so that one fold leaves the parent
		 * exact.  This pass cancels nothing more (what was skipped as
		 * locked is skipped again), so it does not recurse further.
		 */
		if (SPI_processed > 0)
			(void) fold_parent(nspid, parent_id, NULL, true);
	}
	return true;
}

static uint64 fold_waiting(Oid nspid, uint64 *nfolded);

/* list_sort order for deferred parents: ascending ids, as every fold path. */
static int
compare_int64_cells(const ListCell *a, const ListCell *b)
{
	int64		x = *(const int64 *) lfirst(a);
	int64		y = *(const int64 *) lfirst(b);

	return (x > y) - (x < y);
}

/*
 * Remembers, for the end of the transaction, a parent it left a difference
 * for.  A short list: a statement defers once per parent, and a
 * transaction rarely touches many parents.
 */
static void
remember_deferred_parent(int64 parent_id)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	ListCell   *lc;

	foreach(lc, deferred_parents)
	{
		if (*(int64 *) lfirst(lc) == parent_id)
		{
			MemoryContextSwitchTo(old);
			return;
		}
	}
	{
		int64	   *p = palloc(sizeof(int64));

		*p = parent_id;
		deferred_parents = lappend(deferred_parents, p);
	}
	MemoryContextSwitchTo(old);
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
 * executor would make is made here.  From 1.2 on the row carries the time
 * it was deferred, which batchjob_verify() reads.
 */
void
defer_delta(Oid nspid, int64 parent_id, const int64 *delta)
{
	Oid			relid = get_relname_relid("batch_job_deltas", nspid);
	Relation	rel;
	TupleDesc	desc;
	Datum		values[2 + FOLD_NVALUES];
	bool		nulls[2 + FOLD_NVALUES];
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
	if (desc->natts != 1 + FOLD_NVALUES && desc->natts != 2 + FOLD_NVALUES)
		elog(ERROR, "batchjob: table batch_job_deltas has %d columns, expected %d",
			 desc->natts, 2 + FOLD_NVALUES);
	values[0] = Int64GetDatum(parent_id);
	nulls[0] = false;
	for (i = 0; i < FOLD_NVALUES; i++)
	{
		values[1 + i] = Int64GetDatum(delta[i]);
		nulls[1 + i] = false;
	}
	/* deferred_at, 1.2 */
	values[1 + FOLD_NVALUES] =
		TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	nulls[1 + FOLD_NVALUES] = false;
	tup = heap_form_tuple(desc, values, nulls);
	CatalogTupleInsert(rel, tup);
	heap_freetuple(tup);
	table_close(rel, NoLock);

	deferred_in_xact = true;
	deferred_nspid = nspid;
	deferred_userid = GetUserId();
	remember_deferred_parent(parent_id);
}

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
	if (deferred_in_xact || leftovers_in_xact ||
		!TimestampDifferenceExceeds(last_look, now, 1000))
		return;
	last_look = now;
	job_run(&any_delta, nspid, NULL, NULL, true, SPI_OK_SELECT,
			"looking for waiting differences");
	if (SPI_processed > 0)
	{
		/* the pre-commit check does the rest */
		leftovers_in_xact = true;
		deferred_nspid = nspid;
		deferred_userid = GetUserId();
	}
}

/*
 * Registers a folder for this database and waits until it holds the folder
 * lock (or has exited, finding another folder there).  Returns false when
 * no background worker slot is free or the folder did not come up in
 * time: then nobody will fold what this transaction deferred unless it
 * does so itself.
 *
 * The caller holds BJ_LOCK_FOLDER_START, so a burst of committing backends
 * registers one folder, not one each: the others wait here for a moment
 * and then find the folder lock held.
 */
static bool
start_folder(Oid dbid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	LOCKTAG		folder;
	TimestampTz started = GetCurrentTimestamp();
	bool		up = false;

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
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return false;

	batchjob_locktag(&folder, dbid, BJ_LOCK_FOLDER);
	for (;;)
	{
		pid_t		pid;
		BgwHandleStatus status = GetBackgroundWorkerPid(handle, &pid);

		if (!lock_free_now(&folder, ExclusiveLock))
		{
			up = true;			/* ours, or one that was already there */
			break;
		}
		if (status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED)
			break;
		if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(),
									   FOLDER_START_TIMEOUT_MS))
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(handle);
	return up;
}

/*
 * Folds what this transaction deferred, waiting for each parent's right to
 * fold like a plain UPDATE of the parent would: the way out when no folder
 * can run (no background worker slot free).  Parents in ascending id order;
 * a nested parent's own change may defer again, and is then folded in turn.
 * Differences left from before (leftovers) are folded where nobody holds
 * the parent right now, never waiting for them.  Runs as the role that
 * deferred, which may write the jobs table.
 */
static void
fold_own_differences(void)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	int			i;

	/*
	 * The session's search_path (a hostile schema first, say) must not
	 * reach statements prepared here.
	 */
	save_nestlevel = job_pin_search_path();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(deferred_userid,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	/* the statement's snapshot is gone by now */
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (leftovers_in_xact)
		(void) fold_waiting(deferred_nspid, NULL);
	list_sort(deferred_parents, compare_int64_cells);
	/* the list may grow while it is walked: a nested parent defers */
	for (i = 0; i < list_length(deferred_parents); i++)
	{
		int64		parent_id = *(int64 *) list_nth(deferred_parents, i);

		(void) fold_parent(deferred_nspid, parent_id, NULL, true);
	}
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	PopActiveSnapshot();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	job_unpin_search_path(save_nestlevel);
}

/*
 * Before a transaction that deferred commits (or prepares: PREPARE
 * TRANSACTION's differences become visible at COMMIT PREPARED, perhaps in
 * another session), makes sure a folder will fold them.  It runs while the
 * transaction still holds its lock on batch_job_deltas, which is what the
 * folder's final sweep waits for (see the file header).
 *
 * One backend at a time starts a folder (BJ_LOCK_FOLDER_START, held until
 * the folder is up); the others find the lock taken, wait for it, and then
 * see the folder running.  When none can be started, the transaction
 * folds its own differences, so they never wait for a slot.  The folder's
 * own deferrals need nothing while it holds its lock.
 */
static void
make_sure_of_folder(void)
{
	LOCKTAG		folder;
	LOCKTAG		start;

	if (folder_holds_lock)
		return;
	batchjob_locktag(&folder, MyDatabaseId, BJ_LOCK_FOLDER);
	if (!lock_free_now(&folder, ExclusiveLock))
		return;
	/*
	 * A session lock, released before this returns: a transaction-level
	 * one would pass to a prepared transaction and stay held until COMMIT
	 * PREPARED.
	 */
	batchjob_locktag(&start, MyDatabaseId, BJ_LOCK_FOLDER_START);
	(void) LockAcquire(&start, ExclusiveLock, true, false);
	PG_TRY();
	{
		/* a folder started by whoever held the start lock before us? */
		if (lock_free_now(&folder, ExclusiveLock) &&
			!start_folder(MyDatabaseId))
		{
			ereport(DEBUG1,
					(errmsg("batchjob could not start a folder: this transaction folds its own differences")));
			fold_own_differences();
		}
	}
	PG_FINALLY();
	{
		LockRelease(&start, ExclusiveLock, true);
	}
	PG_END_TRY();
}

/*
 * Forgets what the ending transaction deferred; its list lived in
 * TopTransactionContext, which goes with it.
 */
static void
reset_xact_state(void)
{
	deferred_in_xact = false;
	leftovers_in_xact = false;
	deferred_parents = NIL;		/* freed with TopTransactionContext */
}

/*
 * Transaction callback: just before a commit or prepare, make sure a folder
 * will fold what the transaction deferred; at its end, forget it.
 */
static void
fold_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (deferred_in_xact || leftovers_in_xact)
				make_sure_of_folder();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
			reset_xact_state();
			break;
		default:
			break;
	}
}

/*
 * Called once from _PG_init: the pre-commit check that a folder will fold
 * what the transaction deferred, and the reset after it.
 */
void
batchjob_init_fold(void)
{
	RegisterXactCallback(fold_xact_callback, NULL);
}

/*
 * Folds what waits for every parent that has a difference, skipping
 * parents another transaction holds (it is folding them).  Returns how many
 * parents are left with differences.  Must be connected to SPI.
 */
static uint64
fold_waiting(Oid nspid, uint64 *nfolded)
{
	int64		after = PG_INT64_MIN;
	uint64		left = 0;

	for (;;)
	{
		Datum		values[1];
		int64		parents[FOLDER_ROUND_PARENTS];
		uint64		nparents;
		uint64		i;
		bool		isnull;

		values[0] = Int64GetDatum(after);
		job_run(&pending_parents, nspid, values, NULL, false, SPI_OK_SELECT,
				"finding waiting differences");
		nparents = SPI_processed;
		if (nparents == 0)
			break;
		for (i = 0; i < nparents; i++)
			parents[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc,
													 Anum_pending_parents_parent_job_id,
													 &isnull));
		after = parents[nparents - 1];
		for (i = 0; i < nparents; i++)
		{
			/* a deleted parent's differences go too, either way */
			if (!fold_parent(nspid, parents[i], NULL, false))
				left++;
			else if (nfolded)
				(*nfolded)++;
		}
	}
	return left;
}

/*
 * batchjob_fold(parent_job_id DEFAULT NULL): folds the waiting differences
 * of one parent, waiting for its right to fold if another transaction
 * holds it, or of every parent (skipping those held right now).  Returns
 * how many parents it folded: for one parent, 1 when it exists and 0 when
 * there is no such parent (its differences, if any, are dropped).  Never
 * needed for correctness; handy in tests and after a restore.
 */
Datum
batchjob_fold(PG_FUNCTION_ARGS)
{
	Oid			nspid = job_function_namespace(fcinfo);
	uint64		n = 0;

	job_spi_connect();
	if (PG_ARGISNULL(0))
		(void) fold_waiting(nspid, &n);
	else
	{
		int64		parent_id = PG_GETARG_INT64(0);
		Datum		values[1] = {Int64GetDatum(parent_id)};
		bool		isnull;

		(void) fold_parent(nspid, parent_id, NULL, true);
		job_run(&parent_kind, nspid, values, NULL, false, SPI_OK_SELECT,
				"reading the parent");
		if (SPI_processed > 0 &&
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc,
									   Anum_parent_kind_is_parent, &isnull)))
			n = 1;
	}
	job_spi_finish();
	PG_RETURN_INT64((int64) n);
}

/*
 * batchjob_hold_folder_busy(hold boolean): makes the calling session hold
 * (or let go of) the folder's busy lock, as a busy folder does, so that the
 * hand-off can be tested without hoping that a load keeps a folder busy.
 * Superuser only.  Returns whether the session holds it now.
 */
Datum
batchjob_hold_folder_busy(PG_FUNCTION_ARGS)
{
	static bool held = false;
	LOCKTAG		tag;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to hold the folder's busy lock")));
	job_require_arg(fcinfo, 0, "hold");
	batchjob_locktag(&tag, MyDatabaseId, BJ_LOCK_FOLDER_BUSY);
	if (PG_GETARG_BOOL(0) && !held)
		held = LockAcquire(&tag, ExclusiveLock, true, true) !=
			LOCKACQUIRE_NOT_AVAIL;
	else if (!PG_GETARG_BOOL(0) && held)
	{
		LockRelease(&tag, ExclusiveLock, true);
		held = false;
	}
	PG_RETURN_BOOL(held);
}

/*
 * What went wrong with a parent's fold in this folder, so that the server
 * log says it once, not every round.
 */
typedef struct FoldTrouble
{
	int64		parent_id;		/* hash key */
	TimestampTz since;			/* first failed or skipped */
	bool		logged;
} FoldTrouble;

static HTAB *fold_troubles = NULL;

/* The trouble entry of a parent, created on demand when create is true. */
static FoldTrouble *
fold_trouble(int64 parent_id, bool create)
{
	bool		found;
	FoldTrouble *t;

	if (fold_troubles == NULL)
	{
		HASHCTL		ctl;

		if (!create)
			return NULL;
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(FoldTrouble);
		fold_troubles = hash_create("batchjob fold troubles", 64, &ctl,
									HASH_ELEM | HASH_BLOBS);
	}
	t = hash_search(fold_troubles, &parent_id, create ? HASH_ENTER : HASH_FIND,
					&found);
	if (create && !found)
	{
		t->since = GetCurrentTimestamp();
		t->logged = false;
	}
	return t;
}

/*
 * Folds one parent for the folder, in a subtransaction: a fold that fails
 * (its sums overflow, a constraint, its row locked past the lock timeout)
 * is rolled back for that parent alone and the round goes on.  A failure
 * is logged once, with the parent's id; its differences stay, for
 * batchjob_verify() to report and batchjob_refresh_parent() to repair.  A
 * parent whose row stays locked is retried every round, and logged once
 * when it has waited FOLD_BOUND_SECS.  Returns 1 when folded, 0 when left
 * for a later round, -1 when the fold failed.
 */
static int
folder_fold_parent(Oid nspid, int64 parent_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int			result;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		result = fold_parent(nspid, parent_id, NULL, false) ? 1 : 0;
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (result == 1 && fold_troubles != NULL)
			(void) hash_search(fold_troubles, &parent_id, HASH_REMOVE, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		FoldTrouble *t;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		t = fold_trouble(parent_id, true);
		if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		{
			result = 0;
			if (!t->logged &&
				TimestampDifferenceExceeds(t->since, GetCurrentTimestamp(),
										   FOLD_BOUND_SECS * 1000))
			{
				ereport(LOG,
						(errmsg("batchjob could not fold into parent job " INT64_FORMAT " for %d seconds: its row is locked by another transaction",
								parent_id, FOLD_BOUND_SECS),
						 errhint("Its differences wait in batch_job_deltas until that transaction ends.")));
				t->logged = true;
			}
		}
		else
		{
			result = -1;
			if (!t->logged)
			{
				ereport(LOG,
						(errcode(edata->sqlerrcode),
						 errmsg("batchjob could not fold into parent job " INT64_FORMAT ": %s",
								parent_id, edata->message),
						 errdetail("Its differences stay in batch_job_deltas; every other parent goes on folding."),
						 errhint("batchjob_verify() reports the parent; batchjob_refresh_parent(" INT64_FORMAT ") recomputes it from its children.",
								 parent_id)));
				t->logged = true;
			}
		}
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return result;
}

/*
 * Waits until every transaction that holds a lock on batch_job_deltas
 * (relid) that conflicts with a read of all of it has ended: each one that
 * wrote a difference, prepared transactions included.  Polls instead of
 * queueing on their locks, so that the folder's lock_timeout, meant for
 * parent rows, does not cut the wait short.
 */
static void
wait_for_writers(Oid relid)
{
	LOCKTAG		tag;
	VirtualTransactionId *writers;
	int			n;
	int			i;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	writers = GetLockConflicts(&tag, ShareLock, &n);
	for (i = 0; i < n; i++)
	{
		while (!VirtualXactLock(writers[i], false))
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 FOLDER_NAP_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
}

/* batch_job_deltas, as the folder's last round found it. */
static Oid	folder_deltas_relid = InvalidOid;

/*
 * Does a transaction still hold a lock on batch_job_deltas that the final
 * sweep would wait for?  A worker that claimed a job inside a transaction
 * it keeps open while it works holds one.  A folder does not go quiet
 * while one does: its final sweep would wait for that transaction with the
 * folder lock released, holding a background worker slot, and the next
 * deferred difference would start another folder beside it, and so on,
 * one stranded folder per quiet spell.  Staying costs a round every
 * FOLDER_NAP_MS; delaying the hand-over never leaves a difference behind.
 * Called between transactions.
 */
static bool
deltas_writers_open(void)
{
	LOCKTAG		tag;
	VirtualTransactionId *writers;
	int			n;

	if (!OidIsValid(folder_deltas_relid))
		return false;
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, folder_deltas_relid);
	/* palloc'd: the folder never runs in hot standby */
	writers = GetLockConflicts(&tag, ShareLock, &n);
	pfree(writers);
	return n > 0;
}

/*
 * One folder round in its own transaction, as the extension's owner: up to
 * FOLDER_ROUND_PARENTS parents with waiting differences, starting after
 * *cursor and wrapping around.  Returns how many parents are left for a
 * later round (held by others, or more than a round holds), or -1 when the
 * extension is not installed in this database.
 *
 * The final sweep first waits for every transaction still writing
 * batch_job_deltas, and only then takes the snapshots it folds with (read
 * committed: a snapshot per statement).
 */
static int64
folder_round(bool final_sweep, int64 *cursor, bool *idle, uint64 *nrows)
{
	int64		left = -1;
	uint64		nfolded = 0;
	bool		isnull;
	Oid			nspid = InvalidOid;
	Oid			owner = InvalidOid;

	rows_folded = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* prepared once: parsing and planning it was most of an idle round */
	if (folder_extension_plan == NULL)
	{
		folder_extension_plan = SPI_prepare(FOLDER_EXTENSION_SQL, 0, NULL);
		if (folder_extension_plan == NULL ||
			SPI_keepplan(folder_extension_plan) != 0)
			elog(ERROR, "could not prepare the look-up of the batchjob extension");
	}
	if (SPI_execute_plan(folder_extension_plan, NULL, NULL, true, 0) !=
		SPI_OK_SELECT)
		elog(ERROR, "could not look up the batchjob extension");
	if (SPI_processed > 0)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Oid			deltas;

		nspid = DatumGetObjectId(SPI_getbinval(row, desc,
											   Anum_folder_extension_nspid,
											   &isnull));
		owner = DatumGetObjectId(SPI_getbinval(row, desc,
											   Anum_folder_extension_owner,
											   &isnull));
		deltas = DatumGetObjectId(SPI_getbinval(row, desc,
												Anum_folder_extension_deltas,
												&isnull));
		folder_deltas_relid = isnull ? InvalidOid : deltas;
		if (final_sweep && !isnull)
		{
			PopActiveSnapshot();
			wait_for_writers(deltas);
			PushActiveSnapshot(GetTransactionSnapshot());
		}
	}

	if (OidIsValid(nspid))
	{
		Oid			save_userid;
		int			save_sec_context;
		Datum		values[1];
		int64		parents[FOLDER_ROUND_PARENTS];
		uint64		nparents;
		uint64		i;

		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);

		values[0] = Int64GetDatum(*cursor);
		job_run(&pending_parents, nspid, values, NULL, false, SPI_OK_SELECT,
				"finding waiting differences");
		if (SPI_processed == 0 && *cursor != PG_INT64_MIN)
		{
			*cursor = PG_INT64_MIN;
			values[0] = Int64GetDatum(*cursor);
			job_run(&pending_parents, nspid, values, NULL, false,
					SPI_OK_SELECT, "finding waiting differences");
		}
		nparents = SPI_processed;
		for (i = 0; i < nparents; i++)
			parents[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc,
													 Anum_pending_parents_parent_job_id,
													 &isnull));
		/* a full round may not be all: come back without a quiet spell */
		left = nparents == FOLDER_ROUND_PARENTS ? 1 : 0;
		*cursor = nparents == FOLDER_ROUND_PARENTS ?
			parents[nparents - 1] : PG_INT64_MIN;
		for (i = 0; i < nparents; i++)
		{
			int			r = folder_fold_parent(nspid, parents[i]);

			if (r > 0)
				nfolded++;
			else if (r == 0)
				left++;
		}
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	*idle = (nfolded == 0 && left <= 0);
	*nrows = rows_folded;
	return OidIsValid(nspid) ? left : -1;
}

/*
 * A round whose own statements fail (a catalog lock that DDL holds past the
 * lock timeout, say) is logged and tried again after a nap, rather than
 * ending the folder: folds of single parents never get here (see
 * folder_fold_parent).  Counts as idle, so a folder that meets only errors
 * still leaves after its quiet spell.
 */
static int64
folder_round_safely(bool final_sweep, int64 *cursor, bool *idle,
					uint64 *nrows)
{
	MemoryContext cxt = CurrentMemoryContext;
	int64		left = 0;

	PG_TRY();
	{
		left = folder_round(final_sweep, cursor, idle, nrows);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		*idle = true;
		*nrows = 0;
		left = final_sweep ? 1 : 0;
		pg_usleep(100 * 1000L);
	}
	PG_END_TRY();
	return left;
}

/*
 * The settings the folder's work depends on, whatever the database's or
 * role's defaults say (ALTER DATABASE ... SET, which its owner may do):
 * read-write READ COMMITTED transactions (each statement sees what
 * committed before it), no timeouts, triggers firing (the rollup carries a
 * nested parent's change up), no search_path but pg_catalog.
 *
 * Under load batch_job_deltas is a queue: thousands of rows a second go in
 * and out, and its statistics say little about the next round.  A
 * sequential or bitmap scan there reads every dead row each time a parent
 * is folded; a plain index scan reads only the parent's entries and marks
 * the dead ones, so later scans and inserts skip them.  Every statement the
 * folder runs finds its rows through an index.
 */
static void
folder_settings(void)
{
	static const char *const settings[][2] = {
		{"search_path", "pg_catalog, pg_temp"},
		{"default_transaction_isolation", "read committed"},
		{"default_transaction_read_only", "off"},
		{"default_transaction_deferrable", "off"},
		{"statement_timeout", "0"},
		{"lock_timeout", FOLDER_LOCK_TIMEOUT},
		{"idle_in_transaction_session_timeout", "0"},
		{"idle_session_timeout", "0"},
		{"session_replication_role", "origin"},
		{"enable_seqscan", "off"},
		{"enable_bitmapscan", "off"},
	};
	size_t		i;

	for (i = 0; i < lengthof(settings); i++)
		SetConfigOption(settings[i][0], settings[i][1], PGC_SUSET,
						PGC_S_OVERRIDE);
}

/*
 * Takes the folder lock, never waiting in the lock's queue: false when
 * another folder holds it.  A committing backend checks whether the lock
 * is free by taking and releasing it at once, so a lock taken a few times
 * in a row for an instant is not another folder: a few tries, a few
 * milliseconds apart, tell the two apart.
 */
static bool
take_folder_lock(const LOCKTAG *tag)
{
	int			tries;

	for (tries = 0; tries < 10; tries++)
	{
		if (LockAcquire(tag, ExclusiveLock, true, true) !=
			LOCKACQUIRE_NOT_AVAIL)
			return true;
		pg_usleep(2 * 1000L);
	}
	return false;
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
	int64		cursor = PG_INT64_MIN;
	TimestampTz last_work;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("batchjob folder");
	folder_settings();

	batchjob_locktag(&tag, dbid, BJ_LOCK_FOLDER);
	if (!take_folder_lock(&tag))
		proc_exit(0);			/* another folder serves this database */
	folder_holds_lock = true;
	batchjob_locktag(&busy_tag, dbid, BJ_LOCK_FOLDER_BUSY);

	last_work = GetCurrentTimestamp();
	for (;;)
	{
		bool		idle;
		int64		left;
		uint64		nrows;

		CHECK_FOR_INTERRUPTS();
		left = folder_round_safely(false, &cursor, &idle, &nrows);
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
											FOLDER_QUIET_MS) &&
				 !deltas_writers_open())
		{
			/* hand over: see the file header for why this is enough */
			Assert(!busy);
			LockRelease(&tag, ExclusiveLock, true);
			folder_holds_lock = false;
			left = folder_round_safely(true, &cursor, &idle, &nrows);
			if (left <= 0)
				break;
			if (!take_folder_lock(&tag))
				break;
			folder_holds_lock = true;
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
