/*-------------------------------------------------------------------------
 *
 * src/batchjob.h
 *	  Declarations shared by the parts of the batchjob extension, one
 *	  section per file, in the order the files depend on each other: the
 *	  leaves (errors, status rules, schema, statements) first, then the
 *	  parts that use them.  No part calls one listed after it, except
 *	  through the leaves: the call graph has no cycle.
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

/* ---- src/errors.c: errors several parts raise, worded once ---- */

/* How a function reports a job id that names no job. */
typedef enum JobMissing
{
	MISSING_JOB,				/* P0002 job N does not exist */
	MISSING_PARENT				/* 23503 parent job N does not exist */
} JobMissing;

extern void job_require_arg(FunctionCallInfo fcinfo, int argno,
							const char *name);
extern void job_report_missing(JobMissing missing, int64 job_id);
extern void job_report_not_parent(int64 parent_id);
extern void job_add_checked(int64 *acc, int64 value, int64 parent_id);

/* ---- src/status.c: the job statuses and a parent's status rules ---- */

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
 * How many children a parent's counters say it has.  A parent whose sum is
 * 0 has no children yet and keeps figures of its own.  The scripts' SQL
 * reads it from batchjob_child_total() (batchjob--1.1--1.2.sql), which the
 * planner inlines; the library cannot: its statements also run on the 1.0
 * and 1.1 schemas, which lack that function, and the row trigger sums
 * counters it holds in C.  So C has its two forms here, side by side:
 * child_counts_total (src/status.c) for counters in C, JOB_CHILDREN_SQL
 * for the statements (alias is "", "t." or "j.").
 */
#define JOB_CHILDREN_SQL(a) \
	"(" a "child_pending + " a "child_processing + " a "child_completed" \
	" + " a "child_failed + " a "child_cancelled)"

extern JobStatus job_status_from_datum(Datum d, int64 job_id);
extern int64 child_counts_total(const ChildCounts *counts);
extern JobStatus derive_parent_status(const ChildCounts *counts,
									  JobStatus current, bool fail_fast,
									  bool started);
extern char *parent_failure_message(const ChildCounts *counts);

/* ---- src/schema.c: what the library knows of the installed schema ---- */

/*
 * The version of the extension's schema in a database: what the C code
 * asks, and the one way it asks, whenever the scripts made a difference
 * (src/schema.c says what each version changed).
 */
typedef enum JobSchema
{
	JOB_SCHEMA_1_0 = 10,
	JOB_SCHEMA_1_1 = 11,
	JOB_SCHEMA_1_2 = 12
} JobSchema;

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

extern void batchjob_init_schema_cache(void);
extern JobSchema job_schema(Oid nspid);
extern void job_check_nargs(FunctionCallInfo fcinfo, int nargs);
extern const JobColumns *job_columns(Relation rel);
extern Oid	job_function_namespace(FunctionCallInfo fcinfo);

/* ---- src/spi_plans.c: prepared statements and returning their rows ---- */

/*
 * A statement the C code runs, written in the file that runs it.  In its
 * text, %1$s stands for the schema-qualified batch_jobs, %2$s for
 * batch_job_deltas, %3$s for batch_job_workers, %4$s for the view
 * batch_job_figures (1.2) and %% for a percent sign.
 * Every function that runs one pins search_path to pg_catalog, pg_temp, so
 * unqualified operators and functions in it can only be the built-in ones.
 * job_plan prepares it once per backend and keeps the plan here.
 */
typedef struct JobStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[10];
	SPIPlanPtr	plan;			/* prepared for nspid, or NULL */
	Oid			nspid;
} JobStatement;

extern SPIPlanPtr job_plan(JobStatement *stmt, Oid nspid);
extern void job_spi_connect(void);
extern void job_spi_finish(void);
extern int	job_pin_search_path(void);
extern void job_unpin_search_path(int level);
extern void job_run_plan(SPIPlanPtr plan, Datum *values, const char *nulls,
						 bool read_only, int expected, const char *what);
extern void job_run(JobStatement *stmt, Oid nspid, Datum *values,
					const char *nulls, bool read_only, int expected,
					const char *what);
extern Datum job_result_datum(FunctionCallInfo fcinfo, HeapTuple tuple,
							  TupleDesc desc, MemoryContext target);
extern void job_return_tuptable(FunctionCallInfo fcinfo);
extern void job_stream_plan(FunctionCallInfo fcinfo, SPIPlanPtr plan,
							Datum *values, const char *nulls,
							bool read_only);

/* ---- src/tenant.c: tenant isolation and the acting role ---- */

/* batchjob.tenant_isolation, defined in _PG_init */
extern bool batchjob_tenant_isolation;

/*
 * A call of a function that workers and submitters use: the role it acts
 * for, and the user it switched from to work as the extension's owner.
 */
typedef struct JobCall
{
	Oid			nspid;			/* the extension's schema */
	Oid			role;			/* the acting role, whom tenant checks judge */
	bool		switched;		/* whether job_call_end switches back */
	Oid			save_userid;
	int			save_sec_context;
} JobCall;

extern bool role_is_job_admin(Oid nspid, Oid roleid);
extern Datum tenant_scope_datum(Oid nspid, Oid roleid, bool *isnull);
extern void batchjob_init_owner_cache(void);
extern void job_call_begin(FunctionCallInfo fcinfo, JobCall *call);
extern void job_call_invoker(FunctionCallInfo fcinfo, JobCall *call);
extern void job_call_end(const JobCall *call);
extern bool job_hidden(const JobCall *call, int64 job_id);
extern int	jobs_hidden(const JobCall *call, Datum job_ids, int64 **hidden);
extern void check_job_tenant(const JobCall *call, int64 job_id,
							 JobMissing missing);
extern void check_created_by(const JobCall *call, text *created_by);

/* ---- src/limits.c: the bounds on one call (1.2) ---- */

#define BJ_CLAIM_MAX_JOBS		1000
#define BJ_SPLIT_MAX_BATCHES	100000
#define BJ_TOTAL_RECORDS_MAX	(INT64CONST(1) << 48)
extern void check_claim_max_jobs(int32 max_jobs);
extern void check_total_records(int64 total_records);
extern void check_split_batches(int64 total, int32 batch_size,
								int64 nbatches);
extern void check_priority_ceiling(Oid nspid, Oid roleid, int32 priority);

/*
 * ---- the walk below a job: lifecycle.c runs it to cancel and retry,
 * fold.c to cancel what a failing fail_fast parent leaves unfinished ----
 */

/*
 * Selects, as j, every job below $1 at any depth; UNION, not UNION ALL, so
 * that the walk ends even if it meets a cycle.
 *
 * Its shape leaves the planner one way to run it whatever the statistics
 * say: the children of each job found are looked up by parent_job_id (the
 * LATERAL subquery, kept apart by OFFSET 0), and the jobs found are
 * fetched by primary key from an array.  Written as plain joins, a table
 * emptied and vacuumed (statistics of 0 rows) and then given 100,000
 * children by a split before autovacuum analyzed it again was joined by
 * nested loops over whole scans: a cancel that ran for minutes instead of
 * seconds.
 */
#define DESCENDANTS_OF_1 \
	"  WITH RECURSIVE d(job_id) AS (" \
	"   SELECT job_id FROM %1$s WHERE parent_job_id = $1" \
	"   UNION SELECT c.job_id FROM d, LATERAL (SELECT x.job_id FROM %1$s x" \
	"    WHERE x.parent_job_id = d.job_id OFFSET 0) c)" \
	"  SELECT j.job_id FROM %1$s j" \
	"  WHERE j.job_id = ANY (ARRAY(SELECT job_id FROM d))"

/*
 * Cancels every unfinished leaf below $1 (and every parent there that has
 * no children to follow), locked in job_id order so that two cancels, or a
 * cancel and a batch completion, cannot deadlock.  Parents with children
 * follow them through the rollup.  batchjob_cancel runs it waiting for
 * rows; a fold that finds a fail_fast parent failing (src/fold.c) runs it
 * with SKIP LOCKED, since it holds the parent's lock and a held child is
 * being finished right now.
 */
#define CANCEL_DESCENDANTS_SQL(lock_option) \
	"UPDATE %1$s SET status = 'CANCELLED'" \
	" WHERE job_id = ANY (ARRAY(" \
	DESCENDANTS_OF_1 \
	"  AND j.status IN ('PENDING', 'PROCESSING')" \
	"  AND (NOT j.is_parent OR " JOB_CHILDREN_SQL("j.") " = 0)" \
	"  ORDER BY j.job_id FOR UPDATE" lock_option "))" \
	" AND status IN ('PENDING', 'PROCESSING')"

/* ---- src/fold.c: folding differences into parents, and the folder ---- */

/* batchjob.defer_when_busy, defined in _PG_init */
extern bool batchjob_defer_when_busy;

/*
 * A difference to a parent's figures, in this order: the five child
 * counters (JobStatus order), total_records, processed_records,
 * success_count, error_count.
 */
#define FOLD_NVALUES (JOB_NSTATUS + 4)

/*
 * What a new child takes from its parent.  criteria and created_by point
 * into SPI memory, valid until SPI_finish.
 */
typedef struct ParentInfo
{
	Datum		criteria;
	bool		criteria_null;
	Datum		priority;
	Datum		created_by;
	bool		created_by_null;
} ParentInfo;

extern void batchjob_init_fold(void);
extern void job_fetch_parent(Oid nspid, int64 parent_id, bool lock,
							 bool read_only, ParentInfo *info);
extern int64 parent_child_counts(Oid nspid, int64 parent_id,
								 ChildCounts *counts);
extern int64 recount_children(Oid nspid, int64 parent_id,
							  int64 figures[FOLD_NVALUES]);
extern bool folder_is_busy(void);
extern bool rollups_crowded(void);
extern bool lock_parent_for_fold(int64 parent_id, bool wait);
extern bool fold_parent(Oid nspid, int64 parent_id, const int64 *delta,
						bool wait);
extern void defer_delta(Oid nspid, int64 parent_id, const int64 *delta);
extern bool parent_still_there(Oid nspid, int64 parent_id);
extern bool differences_wait_for(Oid nspid, int64 parent_id);
extern void drop_all_differences(Oid nspid);
extern void ensure_folder(Oid nspid);

/* ---- src/lifecycle.c: the worker lifecycle (1.1) ---- */

extern bool job_has_children(Oid nspid, int64 job_id);

/* ---- src/followups.c: jobs that wait for others to finish (1.2) ---- */

/* batchjob_create_followup is SQL-callable only */

#endif							/* BATCHJOB_H */
