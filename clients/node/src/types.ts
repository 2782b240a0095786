/*
 * src/types.ts - the shapes of what the extension returns: a row of
 * batch_jobs, a parent's child counts, a row of batch_job_progress.
 *
 * Columns keep their SQL names (snake_case), so a row reads the same in psql
 * and in TypeScript.  bigint columns are JavaScript bigints: ids and
 * counters past 2^53 are never rounded.  timestamptz columns are Dates.
 */

/** A job's status (the CHECK constraint on batch_jobs.status). */
export type JobStatus =
	| 'PENDING'
	| 'PROCESSING'
	| 'COMPLETED'
	| 'FAILED'
	| 'CANCELLED';

/** The statuses a job does not leave on its own. */
export const FINISHED_STATUSES: readonly JobStatus[] = [
	'COMPLETED',
	'FAILED',
	'CANCELLED',
];

/** A parent's policy when one of its children fails for good. */
export type OnChildFailure = 'continue' | 'fail_fast';

/** Access levels of batchjob_grant. */
export type AccessLevel = 'worker' | 'submitter' | 'admin';

/**
 * A job id as the API accepts it: a bigint, a string of digits, or a
 * number that is a safe integer (a number past 2^53 is refused, since it
 * may already have been rounded).
 */
export type JobId = bigint | number | string;

/**
 * One row of batch_jobs.  `C` is the type of `criteria`, which the
 * application defines (jsonb, parsed).
 */
export interface BatchJob<C = unknown> {
	job_id: bigint;
	status: JobStatus;
	criteria: C | null;
	total_records: bigint | null;
	processed_records: bigint;
	success_count: bigint;
	error_count: bigint;
	error_details: string | null;
	created_by: string | null;
	priority: number;
	is_parent: boolean;
	parent_job_id: bigint | null;
	batch_number: number | null;
	batch_offset: bigint | null;
	batch_size: number | null;
	child_pending: bigint;
	child_processing: bigint;
	child_completed: bigint;
	child_failed: bigint;
	child_cancelled: bigint;
	created_at: Date;
	updated_at: Date;
	started_at: Date | null;
	completed_at: Date | null;
	run_at: Date;
	locked_by: string | null;
	locked_until: Date | null;
	attempts: number;
	max_attempts: number;
	on_child_failure: OnChildFailure;
}

/** batchjob_child_counts: a parent's children by status, exact. */
export interface ChildCounts {
	pending: bigint;
	processing: bigint;
	completed: bigint;
	failed: bigint;
	cancelled: bigint;
	total: bigint;
}

/**
 * One row of the batch_job_progress view.  percent_done and
 * records_per_second are numeric(…, 2) in SQL and numbers here.
 */
export interface Progress {
	job_id: bigint;
	parent_job_id: bigint | null;
	status: JobStatus;
	pending: bigint;
	processing: bigint;
	completed: bigint;
	failed: bigint;
	cancelled: bigint;
	children: bigint;
	processed_records: bigint;
	total_records: bigint | null;
	percent_done: number | null;
	records_per_second: number | null;
	estimated_finish: Date | null;
}

/** One row of batchjob_verify(). */
export interface Violation {
	job_id: bigint | null;
	problem: string;
}

/**
 * A lease: a number of milliseconds, or an interval as PostgreSQL reads it
 * ('5 minutes').
 */
export type Lease = number | string;
