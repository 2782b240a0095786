/*-------------------------------------------------------------------------
 *
 * src/batchjob.h
 *	  Shared declarations of the batchjob extension: job statuses, the
 *	  columns the C code reads, the prepared-plan cache and the status rules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BATCHJOB_H
#define BATCHJOB_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/relcache.h"

#include "compat.h"

/* The five job statuses; the order indexes the child_* counters. */
typedef enum JobStatus
{
	JOB_PENDING = 0,
	JOB_PROCESSING,
	JOB_COMPLETED,
	JOB_FAILED,
	JOB_CANCELLED,
	JOB_NSTATUS
} JobStatus;

extern const char *const job_status_names[JOB_NSTATUS];

#define JOB_STATUS_FINISHED(s) \
	((s) == JOB_COMPLETED || (s) == JOB_FAILED || (s) == JOB_CANCELLED)

/* How many children of a parent are in each status. */
typedef struct ChildCounts
{
	int64		n[JOB_NSTATUS];
} ChildCounts;

/*
 * Attribute numbers of the batch_jobs columns the triggers read and write,
 * looked up by name once per relation and forgotten on relcache
 * invalidation, so that a later ALTER TABLE in an upgrade script cannot make
 * them stale.
 */
typedef struct JobColumns
{
	AttrNumber	job_id;
	AttrNumber	status;
	AttrNumber	total_records;
	AttrNumber	processed_records;
	AttrNumber	success_count;
	AttrNumber	error_count;
	AttrNumber	error_details;
	AttrNumber	is_parent;
	AttrNumber	parent_job_id;
	AttrNumber	child[JOB_NSTATUS];
	AttrNumber	updated_at;
	AttrNumber	started_at;
	AttrNumber	completed_at;
	/* added in 1.1; InvalidAttrNumber while the schema is still 1.0 */
	AttrNumber	run_at;
	AttrNumber	locked_by;
	AttrNumber	locked_until;
	AttrNumber	on_child_failure;
} JobColumns;

#define JOB_COLUMNS_V11(c) ((c)->on_child_failure != InvalidAttrNumber)

/* The statements the C code runs; each is prepared once per backend. */
typedef enum JobPlan
{
	PLAN_ROLLUP_APPLY,
	PLAN_TAKE_WAITING,
	PLAN_INSERT_PARENT,
	PLAN_PARENT_INFO,
	PLAN_LOCK_PARENT,
	PLAN_BATCH_EXISTS,
	PLAN_HAS_CHILDREN,
	PLAN_INSERT_CHILD,
	PLAN_SPLIT,
	PLAN_SET_TOTAL,
	PLAN_CHILDREN,
	PLAN_CHILD_AGGREGATES,
	PLAN_REFRESH_APPLY,
	PLAN_CLEAR_CHILD_COUNTS,
	PLAN_NEXT_PENDING,
	/* the same statements for the 1.1 schema */
	PLAN_ROLLUP_APPLY_V11,
	PLAN_INSERT_PARENT_V11,
	PLAN_NEXT_PENDING_V11,
	PLAN_PARENT_KIND,
	PLAN_DROP_ALL_DELTAS,
	PLAN_PENDING_PARENTS,
	PLAN_ANY_DELTA,
	PLAN_DROP_ORPHAN_DELTAS,
	PLAN_WAITING_FOR_PARENT,
	/* 1.1 only */
	PLAN_CYCLE_CHECK,
	PLAN_JOB_STATE,
	PLAN_JOB_ROW,
	PLAN_WORKER_TENANTS,
	PLAN_FOREIGN_JOB,
	PLAN_CLAIM,
	PLAN_HEARTBEAT,
	PLAN_PROGRESS,
	PLAN_COMPLETE,
	PLAN_FAIL,
	PLAN_COMPLETE_MANY,
	PLAN_FAIL_MANY,
	PLAN_REAP,
	PLAN_RETRY,
	PLAN_RETRY_DESCENDANTS,
	PLAN_CANCEL,
	PLAN_CANCEL_DESCENDANTS,
	PLAN_CANCEL_DESCENDANTS_SKIP_LOCKED,
	PLAN_COUNT
} JobPlan;

/* Columns of the PLAN_JOB_STATE row, which explains a refused call. */
#define JOB_STATE_STATUS		1
#define JOB_STATE_IS_PARENT		2
#define JOB_STATE_LOCKED_BY		3
#define JOB_STATE_ATTEMPTS		4

/*
 * A call of a function that workers and submitters use (src/tenant.c): the
 * role it acts for, and the user it switched from to work as the
 * extension's owner.
 */
typedef struct JobCall
{
	Oid			nspid;			/* the extension's schema */
	Oid			role;			/* the acting role, whom tenant checks judge */
	bool		switched;		/* whether job_call_end switches back */
	Oid			save_userid;
	int			save_sec_context;
} JobCall;

/* How a function reports a job id that names no job. */
typedef enum JobMissing
{
	MISSING_JOB,				/* P0002 job N does not exist */
	MISSING_PARENT				/* 23503 parent job N does not exist */
} JobMissing;

/* src/util.c */
extern void job_report_missing(JobMissing missing, int64 job_id);
extern void job_require_arg(FunctionCallInfo fcinfo, int argno,
							const char *name);
extern void job_spi_connect(void);
extern void job_spi_finish(void);
extern void job_run_plan(SPIPlanPtr plan, Datum *values, const char *nulls,
						 bool read_only, int expected, const char *what);
extern void job_fetch_parent(Oid nspid, int64 parent_id, bool lock,
							 bool read_only);
extern void batchjob_init_caches(void);
extern JobStatus job_status_from_datum(Datum d, int64 job_id);
extern const JobColumns *job_columns(Relation rel);
extern SPIPlanPtr job_plan(JobPlan which, Oid nspid);
extern Oid	job_function_namespace(FunctionCallInfo fcinfo);
extern bool job_schema_is_v11(Oid nspid);
extern JobStatus derive_parent_status(const ChildCounts *counts,
									  JobStatus current, bool fail_fast,
									  bool started);
/* src/fold.c */
#define FOLD_NVALUES (JOB_NSTATUS + 4)
extern void batchjob_init_fold(void);
extern bool lock_parent_for_fold(int64 parent_id, bool wait);
extern void ensure_folder(Oid nspid);
extern bool fold_parent(Oid nspid, bool v11, int64 parent_id,
						const int64 *delta, bool wait);
extern void defer_delta(Oid nspid, int64 parent_id, const int64 *delta);
extern bool parent_still_there(Oid nspid, int64 parent_id);
extern bool folder_is_busy(void);

/* src/tenant.c */
extern void batchjob_define_gucs(void);
extern bool tenant_isolation_enabled(void);
extern Datum tenant_scope_datum(Oid nspid, Oid roleid, bool *isnull);
extern void job_call_begin(FunctionCallInfo fcinfo, JobCall *call);
extern void job_call_invoker(FunctionCallInfo fcinfo, JobCall *call);
extern void job_call_end(const JobCall *call);
extern bool job_hidden(const JobCall *call, int64 job_id);
extern int	jobs_hidden(const JobCall *call, Datum job_ids, int64 **hidden);
extern void check_job_tenant(const JobCall *call, int64 job_id,
							 JobMissing missing);
extern void check_created_by(const JobCall *call, text *created_by);
extern bool role_is_job_admin(Oid nspid, Oid roleid);

/* src/limits.c: the bounds on one call (1.2) */
#define BJ_CLAIM_MAX_JOBS		1000
#define BJ_SPLIT_MAX_BATCHES	100000
#define BJ_TOTAL_RECORDS_MAX	(INT64CONST(1) << 48)
extern void check_claim_max_jobs(int32 max_jobs);
extern void check_total_records(int64 total_records);
extern void check_split_batches(int64 total, int32 batch_size,
								int64 nbatches);
extern void check_priority_ceiling(Oid nspid, Oid roleid, int32 priority);

extern uint64 cancel_descendants(Oid nspid, int64 job_id, bool skip_locked);
extern char *parent_failure_message(const ChildCounts *counts);
extern void job_add_checked(int64 *acc, int64 value, int64 parent_id);
extern void job_report_not_parent(int64 parent_id);
extern int64 child_counts_total(const ChildCounts *counts);
extern Datum job_result_datum(FunctionCallInfo fcinfo, HeapTuple tuple,
							  TupleDesc desc, MemoryContext target);
extern void job_return_tuptable(FunctionCallInfo fcinfo);
extern void job_stream_plan(FunctionCallInfo fcinfo, SPIPlanPtr plan,
							Datum *values, const char *nulls,
							bool read_only);

#endif							/* BATCHJOB_H */
