/*
 * src/batchjobs.ts - the typed API: one method per SQL function of the
 * extension (batchjob_claim → claim), plus children() as a stream and
 * waitForParent().
 *
 * Every method runs its statement on the pool it was given, with the type
 * parsers of sql.ts, so bigint columns come back as bigints and server
 * errors as the classes of errors.ts.
 */

import type { Notification, Pool, PoolClient } from 'pg';

import { JobNotFoundError, WaitTimeoutError, isConnectionError } from './errors.js';
import { bigParam, idArrayParam, idParam, leaseParam, query, quoteIdent } from './sql.js';
import {
	FINISHED_STATUSES,
	type AccessLevel,
	type BatchJob,
	type ChildCounts,
	type JobId,
	type Lease,
	type OnChildFailure,
	type Progress,
	type Violation,
} from './types.js';

export interface BatchJobsOptions {
	/**
	 * The schema the extension was created in.  Without it, names are
	 * left unqualified and found through the connection's search_path.
	 */
	schema?: string;
}

export interface CreateParentOptions {
	priority?: number;
	/** Records to process, when known before the children exist. */
	totalRecords?: bigint | number | null;
	onChildFailure?: OnChildFailure;
	/** Makes the new parent a child of another parent (nesting). */
	parentJobId?: JobId | null;
}

export interface CreateChildOptions<C> {
	/** Defaults to the parent's. */
	criteria?: C | null;
	/** Defaults to the parent's. */
	priority?: number | null;
}

export interface ClaimOptions {
	/** At most this many jobs (default 1). */
	maxJobs?: number;
	/** Lease: milliseconds or interval text (default '5 minutes'). */
	lease?: Lease;
}

/** Which claim a call is about: the worker name and the attempt it was given. */
export interface ClaimRef {
	worker?: string | null;
	/** The `attempts` value batchjob_claim returned with the job. */
	attempt?: number | null;
}

export interface HeartbeatOptions {
	lease?: Lease;
	attempt?: number | null;
}

export interface Figures {
	processed: bigint | number;
	succeeded: bigint | number;
	failed: bigint | number;
}

export interface FailOptions extends ClaimRef {
	/** Go back to PENDING (with backoff) while attempts remain; default true. */
	retry?: boolean;
}

export interface ChildrenOptions {
	/** Rows fetched from the cursor at a time (default 1000). */
	fetchSize?: number;
}

export interface WaitOptions {
	signal?: AbortSignal;
	/** Reject with WaitTimeoutError after this long. */
	timeoutMs?: number;
	/**
	 * Read the parent again at this interval even without a notification
	 * (default 5000); a safety net, not the way it normally wakes.
	 */
	pollIntervalMs?: number;
}

/** The channels the extension notifies. */
export const CHANNEL_PARENT_DONE = 'batchjob_parent_done';
export const CHANNEL_JOBS_AVAILABLE = 'batchjob_jobs_available';

let cursorSeq = 0;

/**
 * The batchjob API on a pg.Pool.  `C` is the type of the jobs' criteria.
 *
 * ```ts
 * const jobs = new BatchJobs<{ export: string }>(new pg.Pool());
 * const parent = await jobs.createParent({ export: 'customers' }, 'alice');
 * await jobs.split(parent.job_id, 1_000_000n, 1000);
 * ```
 */
export class BatchJobs<C = unknown> {
	readonly pool: Pool;
	private readonly prefix: string;

	constructor(pool: Pool, options: BatchJobsOptions = {}) {
		this.pool = pool;
		this.prefix = options.schema !== undefined ? quoteIdent(options.schema) + '.' : '';
	}

	/** A name of the extension's (table, view, function), qualified when a schema was given. */
	qualify(name: string): string {
		return this.prefix + name;
	}

	private async one<R extends object>(text: string, values: unknown[]): Promise<R> {
		const rows = await query<R & Record<string, unknown>>(this.pool, text, values);
		const row = rows[0];
		if (row === undefined)
			throw new Error(`batchjob: no row from ${text}`);
		return row;
	}

	private async scalar<T>(text: string, values: unknown[]): Promise<T> {
		const row = await this.one<{ v: T }>(text, values);
		return row.v;
	}

	/** A job by id (a plain SELECT of batch_jobs); null when there is none or it is not visible. */
	async get(jobId: JobId): Promise<BatchJob<C> | null> {
		const rows = await query<BatchJob<C> & Record<string, unknown>>(
			this.pool,
			`SELECT * FROM ${this.qualify('batch_jobs')} WHERE job_id = $1`,
			[idParam(jobId)],
		);
		return rows[0] ?? null;
	}

	/** batchjob_create_parent: a PENDING parent. */
	async createParent(
		criteria: C,
		createdBy: string,
		options: CreateParentOptions = {},
	): Promise<BatchJob<C>> {
		return this.one<BatchJob<C>>(
			`SELECT * FROM ${this.qualify('batchjob_create_parent')}($1::jsonb, $2::text, $3::int4, $4::int8, $5::text, $6::int8)`,
			[
				jsonParam(criteria),
				createdBy,
				options.priority ?? 0,
				bigParam(options.totalRecords),
				options.onChildFailure ?? 'continue',
				options.parentJobId == null ? null : idParam(options.parentJobId),
			],
		);
	}

	/** batchjob_create_child: one PENDING child of a parent. */
	async createChild(
		parentJobId: JobId,
		batchNumber: number,
		batchOffset: bigint | number,
		batchSize: number,
		options: CreateChildOptions<C> = {},
	): Promise<BatchJob<C>> {
		return this.one<BatchJob<C>>(
			`SELECT * FROM ${this.qualify('batchjob_create_child')}($1::int8, $2::int4, $3::int8, $4::int4, $5::jsonb, $6::int4)`,
			[
				idParam(parentJobId),
				batchNumber,
				bigParam(batchOffset),
				batchSize,
				options.criteria == null ? null : jsonParam(options.criteria),
				options.priority ?? null,
			],
		);
	}

	/**
	 * batchjob_split: creates every child of a parent that has none, and
	 * returns how many.  The children are not sent back (there may be a
	 * million); read them with children().
	 */
	async split(parentJobId: JobId, totalRecords: bigint | number, batchSize: number): Promise<number> {
		const n = await this.scalar<bigint>(
			`SELECT count(*) AS v FROM ${this.qualify('batchjob_split')}($1::int8, $2::int8, $3::int4)`,
			[idParam(parentJobId), bigParam(totalRecords), batchSize],
		);
		return Number(n);
	}

	/**
	 * batchjob_children, streamed: the children of a parent by batch_number,
	 * fetched through a server-side cursor (DECLARE … FETCH in a
	 * transaction on one pooled connection), fetchSize rows at a time.  The
	 * connection goes back to the pool when the loop ends, breaks or throws.
	 */
	async *children(parentJobId: JobId, options: ChildrenOptions = {}): AsyncGenerator<BatchJob<C>, void, undefined> {
		const fetchSize = options.fetchSize ?? 1000;
		if (!Number.isInteger(fetchSize) || fetchSize < 1)
			throw new RangeError(`fetchSize must be a positive integer: ${fetchSize}`);
		const id = idParam(parentJobId);
		const cursor = quoteIdent(`batchjob_children_${process.pid}_${++cursorSeq}`);
		const client = await this.pool.connect();
		let open = false;
		let broken: Error | undefined;
		try {
			await query(client, 'BEGIN');
			open = true;
			await query(
				client,
				`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT * FROM ${this.qualify('batchjob_children')}($1::int8)`,
				[id],
			);
			for (;;) {
				const rows = await query<BatchJob<C> & Record<string, unknown>>(
					client,
					`FETCH ${fetchSize} FROM ${cursor}`,
				);
				for (const row of rows)
					yield row;
				if (rows.length < fetchSize)
					break;
			}
			await query(client, 'COMMIT');
			open = false;
		} catch (err) {
			if (err instanceof Error && isConnectionError(err))
				broken = err;
			throw err;
		} finally {
			if (open && broken === undefined) {
				try {
					await client.query('ROLLBACK');
				} catch (err) {
					broken = err instanceof Error ? err : new Error(String(err));
				}
			}
			client.release(broken);
		}
	}

	/** batchjob_child_counts: a parent's children by status, exact. */
	async childCounts(parentJobId: JobId): Promise<ChildCounts> {
		return this.one<ChildCounts>(
			`SELECT * FROM ${this.qualify('batchjob_child_counts')}($1::int8)`,
			[idParam(parentJobId)],
		);
	}

	/** The parent's row of the batch_job_progress view; null when there is none. */
	async progress(parentJobId: JobId): Promise<Progress | null> {
		const rows = await query<Progress & Record<string, unknown>>(
			this.pool,
			`SELECT * FROM ${this.qualify('batch_job_progress')} WHERE job_id = $1::int8`,
			[idParam(parentJobId)],
		);
		return rows[0] ?? null;
	}

	/** batchjob_refresh_parent: recompute a parent from all its children (O(children)); null when it has none. */
	async refreshParent(parentJobId: JobId): Promise<BatchJob<C> | null> {
		const rows = await query<BatchJob<C> & Record<string, unknown>>(
			this.pool,
			`SELECT * FROM ${this.qualify('batchjob_refresh_parent')}($1::int8) WHERE job_id IS NOT NULL`,
			[idParam(parentJobId)],
		);
		return rows[0] ?? null;
	}

	/** batchjob_next_pending: the job a worker would claim next, or null. Takes nothing. */
	async nextPending(): Promise<BatchJob<C> | null> {
		const rows = await query<BatchJob<C> & Record<string, unknown>>(
			this.pool,
			`SELECT * FROM ${this.qualify('batchjob_next_pending')}() WHERE job_id IS NOT NULL`,
		);
		return rows[0] ?? null;
	}

	/**
	 * batchjob_claim: moves up to maxJobs claimable jobs to PROCESSING under
	 * this worker.  Keep each job's `attempts`: it is the attempt to pass
	 * to heartbeat, reportProgress, complete and fail.
	 */
	async claim(worker: string, options: ClaimOptions = {}): Promise<BatchJob<C>[]> {
		return query<BatchJob<C> & Record<string, unknown>>(
			this.pool,
			`SELECT * FROM ${this.qualify('batchjob_claim')}($1::text, $2::int4, $3::interval)`,
			[worker, options.maxJobs ?? 1, leaseParam(options.lease ?? '5 minutes')],
		);
	}

	/**
	 * batchjob_complete_and_claim: completes jobIds (all of them or none, as
	 * complete(jobIds, { worker })) and then claims up to maxJobs for worker,
	 * in one call and one commit; returns the claimed jobs.
	 */
	async completeAndClaim(jobIds: readonly JobId[], worker: string, options: ClaimOptions = {}): Promise<BatchJob<C>[]> {
		return query<BatchJob<C> & Record<string, unknown>>(
			this.pool,
			`SELECT * FROM ${this.qualify('batchjob_complete_and_claim')}($1::int8[], $2::text, $3::int4, $4::interval)`,
			[idArrayParam(jobIds), worker, options.maxJobs ?? 1, leaseParam(options.lease ?? '5 minutes')],
		);
	}

	/**
	 * batchjob_heartbeat: extends the lease.  false means the job is no
	 * longer this claim's (cancelled, reaped, finished): stop working on it.
	 */
	async heartbeat(jobId: JobId, worker: string, options: HeartbeatOptions = {}): Promise<boolean> {
		return this.scalar<boolean>(
			`SELECT ${this.qualify('batchjob_heartbeat')}($1::int8, $2::text, $3::interval, $4::int4) AS v`,
			[idParam(jobId), worker, leaseParam(options.lease ?? '5 minutes'), options.attempt ?? null],
		);
	}

	/** batchjob_progress: a PROCESSING job's figures (absolute values). */
	async reportProgress(jobId: JobId, figures: Figures, claim: ClaimRef = {}): Promise<BatchJob<C>> {
		return this.one<BatchJob<C>>(
			`SELECT * FROM ${this.qualify('batchjob_progress')}($1::int8, $2::int8, $3::int8, $4::int8, $5::text, $6::int4)`,
			[
				idParam(jobId),
				bigParam(figures.processed),
				bigParam(figures.succeeded),
				bigParam(figures.failed),
				claim.worker ?? null,
				claim.attempt ?? null,
			],
		);
	}

	/**
	 * batchjob_complete.  One job: PROCESSING → COMPLETED, returns the row.
	 * An array: all of them or none, returns how many changed (the array
	 * form takes a worker, no attempt).
	 */
	complete(jobId: JobId, claim?: ClaimRef): Promise<BatchJob<C>>;
	complete(jobIds: readonly JobId[], claim?: { worker?: string | null }): Promise<bigint>;
	async complete(ids: JobId | readonly JobId[], claim: ClaimRef = {}): Promise<BatchJob<C> | bigint> {
		if (Array.isArray(ids)) {
			return this.scalar<bigint>(
				`SELECT ${this.qualify('batchjob_complete')}($1::int8[], $2::text) AS v`,
				[idArrayParam(ids), claim.worker ?? null],
			);
		}
		return this.one<BatchJob<C>>(
			`SELECT * FROM ${this.qualify('batchjob_complete')}($1::int8, $2::text, $3::int4)`,
			[idParam(ids as JobId), claim.worker ?? null, claim.attempt ?? null],
		);
	}

	/**
	 * batchjob_fail.  With retry (the default) the job goes back to PENDING
	 * with a backoff while attempts remain, else it becomes FAILED.  One job
	 * returns the row; an array returns how many changed.
	 */
	fail(jobId: JobId, errorDetails: string | null, options?: FailOptions): Promise<BatchJob<C>>;
	fail(jobIds: readonly JobId[], errorDetails: string | null, options?: { retry?: boolean; worker?: string | null }): Promise<bigint>;
	async fail(
		ids: JobId | readonly JobId[],
		errorDetails: string | null,
		options: FailOptions = {},
	): Promise<BatchJob<C> | bigint> {
		const retry = options.retry ?? true;
		if (Array.isArray(ids)) {
			return this.scalar<bigint>(
				`SELECT ${this.qualify('batchjob_fail')}($1::int8[], $2::text, $3::bool, $4::text) AS v`,
				[idArrayParam(ids), errorDetails, retry, options.worker ?? null],
			);
		}
		return this.one<BatchJob<C>>(
			`SELECT * FROM ${this.qualify('batchjob_fail')}($1::int8, $2::text, $3::bool, $4::text, $5::int4)`,
			[idParam(ids as JobId), errorDetails, retry, options.worker ?? null, options.attempt ?? null],
		);
	}

	/** batchjob_cancel: cancels an unfinished job (a parent: everything below it); returns how many changed. */
	async cancel(jobId: JobId): Promise<bigint> {
		return this.scalar<bigint>(`SELECT ${this.qualify('batchjob_cancel')}($1::int8) AS v`, [idParam(jobId)]);
	}

	/** batchjob_retry: a FAILED job (or every FAILED job below a parent) back to PENDING. */
	async retry(jobId: JobId): Promise<BatchJob<C>> {
		return this.one<BatchJob<C>>(`SELECT * FROM ${this.qualify('batchjob_retry')}($1::int8)`, [idParam(jobId)]);
	}

	/** batchjob_reap: takes back jobs whose lease expired; returns how many. */
	async reap(): Promise<bigint> {
		return this.scalar<bigint>(`SELECT ${this.qualify('batchjob_reap')}() AS v`, []);
	}

	/** batchjob_verify: every broken invariant, none when all is well. O(table). */
	async verify(): Promise<Violation[]> {
		return query<Violation & Record<string, unknown>>(
			this.pool,
			`SELECT * FROM ${this.qualify('batchjob_verify')}()`,
		);
	}

	/** batchjob_fold: folds waiting differences into one parent, or every parent; returns how many parents. */
	async fold(parentJobId?: JobId | null): Promise<bigint> {
		return this.scalar<bigint>(
			`SELECT ${this.qualify('batchjob_fold')}($1::int8) AS v`,
			[parentJobId == null ? null : idParam(parentJobId)],
		);
	}

	/**
	 * batchjob_grant: worker, submitter or admin access for a role (its
	 * name, as written in CREATE ROLE); tenants only for workers.
	 */
	async grant(role: string, level: AccessLevel, tenants?: readonly string[] | null): Promise<void> {
		await query(
			this.pool,
			`SELECT ${this.qualify('batchjob_grant')}(pg_catalog.quote_ident($1)::regrole, $2::text, $3::text[])`,
			[role, level, tenants ?? null],
		);
	}

	/** batchjob_revoke: takes back everything batchjob_grant gave the role. */
	async revoke(role: string): Promise<void> {
		await query(
			this.pool,
			`SELECT ${this.qualify('batchjob_revoke')}(pg_catalog.quote_ident($1)::regrole)`,
			[role],
		);
	}

	/**
	 * Resolves with the parent once it is COMPLETED, FAILED or CANCELLED.
	 *
	 * It LISTENs on batchjob_parent_done first and reads the parent after,
	 * so a parent that finished before the LISTEN is seen by the read, and
	 * one that finishes after it sends a notification.  A notification
	 * for this job (or one without payload, as under tenant isolation)
	 * makes it read the parent again.  A lost listening connection is
	 * replaced, and the parent read again.
	 */
	async waitForParent(parentJobId: JobId, options: WaitOptions = {}): Promise<BatchJob<C>> {
		const id = idParam(parentJobId);
		const { signal } = options;
		const pollIntervalMs = options.pollIntervalMs ?? 5000;
		signal?.throwIfAborted();

		const cleanups: (() => void)[] = [];
		/* what ends the wait early: abort or timeout, as a rejected promise */
		const stop = new Promise<never>((_, reject) => {
			if (signal !== undefined) {
				const onAbort = (): void => reject(signal.reason);
				signal.addEventListener('abort', onAbort, { once: true });
				cleanups.push(() => signal.removeEventListener('abort', onAbort));
			}
			if (options.timeoutMs !== undefined) {
				const t = setTimeout(
					() => reject(new WaitTimeoutError({ message: `parent job ${id} did not finish within ${options.timeoutMs} ms` })),
					options.timeoutMs,
				);
				cleanups.push(() => clearTimeout(t));
			}
		});
		stop.catch(() => undefined);

		let client: PoolClient | undefined;
		let clientBroken: Error | undefined;
		let wake: () => void = () => undefined;
		const onNotification = (msg: Notification): void => {
			if (msg.channel !== CHANNEL_PARENT_DONE)
				return;
			if (msg.payload === undefined || msg.payload === '') {
				wake();
				return;
			}
			try {
				const p = JSON.parse(msg.payload) as { job_id?: unknown };
				if (String(p.job_id) === id)
					wake();
			} catch {
				wake();
			}
		};
		const onError = (err: Error): void => {
			clientBroken = err;
			wake();
		};
		const dropClient = (): void => {
			if (client === undefined)
				return;
			client.removeListener('notification', onNotification);
			client.removeListener('error', onError);
			/* a client that LISTENed is not handed to anyone else */
			client.release(clientBroken ?? true);
			client = undefined;
			clientBroken = undefined;
		};

		try {
			let backoff = 100;
			for (;;) {
				/* armed before the read, so a notification during it is kept */
				const woken = new Promise<void>((resolve) => {
					wake = resolve;
				});
				try {
					if (client === undefined || clientBroken !== undefined) {
						dropClient();
						const connecting = this.pool.connect();
						try {
							client = await Promise.race([connecting, stop]);
						} catch (err) {
							/* stopped while connecting: the connection, when it comes, goes back */
							connecting.then((c) => c.release(), () => undefined);
							throw err;
						}
						client.on('notification', onNotification);
						client.on('error', onError);
						await Promise.race([query(client, `LISTEN ${CHANNEL_PARENT_DONE}`), stop]);
					}
					const job = await Promise.race([this.get(id), stop]);
					if (job === null)
						throw new JobNotFoundError({ message: `job ${id} does not exist`, code: 'P0002' });
					if (FINISHED_STATUSES.includes(job.status))
						return job;
					backoff = 100;
				} catch (err) {
					if (!isConnectionError(err))
						throw err;
					/* the connection went away: try again on another one */
					if (client !== undefined)
						clientBroken = clientBroken ?? (err as Error);
					await Promise.race([sleep(backoff), stop]);
					backoff = Math.min(backoff * 2, 5000);
					continue;
				}
				let timer: NodeJS.Timeout | undefined;
				const poll = new Promise<void>((resolve) => {
					timer = setTimeout(resolve, pollIntervalMs);
				});
				try {
					await Promise.race([woken, poll, stop]);
				} finally {
					clearTimeout(timer);
				}
			}
		} finally {
			for (const c of cleanups)
				c();
			dropClient();
		}
	}
}

/** criteria as a jsonb parameter (JSON text: pg would send a JS array as a PostgreSQL array). */
function jsonParam(v: unknown): string | null {
	return v === undefined || v === null ? null : JSON.stringify(v);
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}
