/*
 * src/repository.ts - a drop-in for the service's BatchJobRepository: the
 * seven method names and shapes of the design batchjob replaces, backed by
 * the extension.
 *
 * What changes for a caller is in the client README ("Migrating from
 * BatchJobRepository"): the parent is no longer COMPLETED while children
 * still run, and the database keeps parents up to date by itself, so the
 * two updateParentJob* methods only read.
 */

import type { Pool } from 'pg';

import { BatchJobs } from './batchjobs.js';
import { InvalidArgumentError } from './errors.js';
import type { BatchJob, JobId } from './types.js';

/** A row with its bigint columns as numbers (the repository's 'number' mode). */
export type Int8AsNumber<T> = {
	[K in keyof T]: T[K] extends bigint ? number : T[K] extends bigint | null ? number | null : T[K];
};

export type Int8Mode = 'bigint' | 'number';

export type RepositoryJob<C, M extends Int8Mode> = M extends 'number' ? Int8AsNumber<BatchJob<C>> : BatchJob<C>;

export interface RepositoryOptions<M extends Int8Mode> {
	schema?: string;
	/**
	 * How bigint columns come back: 'bigint' (the default, exact), or
	 * 'number' as the old repository returned them, for code that does
	 * arithmetic on ids; a value past Number.MAX_SAFE_INTEGER then throws a
	 * RangeError instead of being rounded.
	 */
	int8?: M;
}

/** The seed's getChildJobStatusCounts shape, plus cancelled. */
export interface StatusCounts {
	pending: number;
	processing: number;
	completed: number;
	failed: number;
	cancelled: number;
	total: number;
}

/** What createParentJob and createChildJob read from the job they are given. */
export type NewJob<C> = Partial<Omit<BatchJob<C>, 'criteria'>> & { criteria?: C | null };

export class BatchJobRepository<C = unknown, M extends Int8Mode = 'bigint'> {
	readonly jobs: BatchJobs<C>;
	private readonly mode: Int8Mode;

	constructor(pool: Pool, options: RepositoryOptions<M> = {}) {
		this.jobs = new BatchJobs<C>(pool, options.schema !== undefined ? { schema: options.schema } : {});
		this.mode = options.int8 ?? 'bigint';
	}

	private out(job: BatchJob<C>): RepositoryJob<C, M>;
	private out(job: BatchJob<C> | null): RepositoryJob<C, M> | null;
	private out(job: BatchJob<C> | null): RepositoryJob<C, M> | null {
		if (job === null || this.mode === 'bigint')
			return job as RepositoryJob<C, M> | null;
		const copy: Record<string, unknown> = { ...job };
		for (const [k, v] of Object.entries(copy)) {
			if (typeof v === 'bigint')
				copy[k] = safeNumber(v, k);
		}
		return copy as RepositoryJob<C, M>;
	}

	/**
	 * Creates a PENDING parent (batchjob_create_parent) from job.criteria,
	 * job.created_by, job.priority and job.total_records.  A job asking for
	 * another status, or carrying progress, is refused: the extension
	 * creates every job PENDING with no progress.
	 */
	async createParentJob(job: NewJob<C>): Promise<RepositoryJob<C, M>> {
		refuseState(job);
		if (job.created_by == null)
			throw clientError('created_by must not be null', '22004');
		const row = await this.jobs.createParent(job.criteria as C, job.created_by, {
			priority: job.priority ?? 0,
			totalRecords: job.total_records ?? null,
			...(job.on_child_failure !== undefined ? { onChildFailure: job.on_child_failure } : {}),
		});
		return this.out(row);
	}

	/**
	 * Creates a PENDING child (batchjob_create_child) with total_records =
	 * batchSize; criteria and priority from the job given, else the
	 * parent's; created_by is always the parent's.
	 */
	async createChildJob(
		parentJobId: JobId,
		job: NewJob<C>,
		batchNumber: number,
		batchOffset: bigint | number,
		batchSize: number,
	): Promise<RepositoryJob<C, M>> {
		refuseState(job);
		const row = await this.jobs.createChild(parentJobId, batchNumber, batchOffset, batchSize, {
			criteria: job.criteria ?? null,
			priority: job.priority ?? null,
		});
		return this.out(row);
	}

	/**
	 * Every child of a parent, by batch_number, in one array, as before.
	 * For large parents use jobs.children(), which streams.
	 */
	async getChildJobs(parentJobId: JobId): Promise<RepositoryJob<C, M>[]> {
		const rows: RepositoryJob<C, M>[] = [];
		for await (const job of this.jobs.children(parentJobId))
			rows.push(this.out(job));
		return rows;
	}

	/** The children by status (batchjob_child_counts: exact, O(1)), as numbers. */
	async getChildJobStatusCounts(parentJobId: JobId): Promise<StatusCounts> {
		const c = await this.jobs.childCounts(parentJobId);
		return {
			pending: safeNumber(c.pending, 'pending'),
			processing: safeNumber(c.processing, 'processing'),
			completed: safeNumber(c.completed, 'completed'),
			failed: safeNumber(c.failed, 'failed'),
			cancelled: safeNumber(c.cancelled, 'cancelled'),
			total: safeNumber(c.total, 'total'),
		};
	}

	/**
	 * The parent as the database keeps it: its figures are its children's
	 * sums already.  Nothing to compute or write any more; null, as
	 * before, when it has no children (or is not a parent).
	 */
	async updateParentJobProgress(parentJobId: JobId): Promise<RepositoryJob<C, M> | null> {
		return this.readParent(parentJobId);
	}

	/**
	 * The parent as the database keeps it: its status follows its
	 * children by the extension's rules (PROCESSING while any child runs,
	 * even after a failure).  Null when it has no children.
	 */
	async updateParentJobStatus(parentJobId: JobId): Promise<RepositoryJob<C, M> | null> {
		return this.readParent(parentJobId);
	}

	/** The job a worker would claim next (batchjob_next_pending), or null. To take it, use claim(). */
	async getNextPendingJob(): Promise<RepositoryJob<C, M> | null> {
		return this.out(await this.jobs.nextPending());
	}

	private async readParent(parentJobId: JobId): Promise<RepositoryJob<C, M> | null> {
		const job = await this.jobs.get(parentJobId);
		if (job === null || !job.is_parent)
			return null;
		const counts = await this.jobs.childCounts(parentJobId);
		if (counts.total === 0n)
			return null;
		return this.out(job);
	}
}

function safeNumber(v: bigint, what: string): number {
	if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
		throw new RangeError(`${what} ${v} is past Number.MAX_SAFE_INTEGER; use the repository's 'bigint' mode`);
	return Number(v);
}

function clientError(message: string, code: string): InvalidArgumentError {
	return new InvalidArgumentError({ message, code });
}

/** The extension creates jobs PENDING with no progress; refuse a job that asks otherwise. */
function refuseState(job: NewJob<unknown>): void {
	if (job.status !== undefined && job.status !== 'PENDING')
		throw clientError(`a new job is PENDING, not ${job.status}`, '22023');
	for (const k of ['processed_records', 'success_count', 'error_count'] as const) {
		const v = job[k];
		if (v !== undefined && v !== null && BigInt(v) !== 0n)
			throw clientError(`a new job has no progress: ${k} must be 0`, '22023');
	}
	if (job.error_details != null)
		throw clientError('a new job has no error_details', '22023');
}
