/*
 * src/worker.ts - a worker runner: claims jobs in batches, runs a handler
 * on each, keeps their leases, and completes or fails them.
 *
 * One claim is one (worker name, attempt) pair: every call about a job
 * passes both, so a job this worker lost (its lease expired and another
 * worker claimed it) can no longer be reported on, completed or failed
 * from here.  The worker's name is unique to each Worker object (a prefix,
 * then host, process id and a random suffix), which is what lets it adopt
 * the jobs of a claim whose answer a dropped connection swallowed: they
 * are PROCESSING under its name, and nobody else's.
 *
 * Calls that fail because the connection went away are made again on
 * another connection.  A complete or fail whose answer was lost may have
 * committed; when trying again gets "not PROCESSING", the job's row says
 * whether it was this claim's call that finished it, so a job is reported
 * done or failed once, never twice, and never silently dropped.
 */

import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Notification, Pool, PoolClient } from 'pg';

import { BatchJobs, CHANNEL_JOBS_AVAILABLE, type ClaimRef, type Figures } from './batchjobs.js';
import { ConflictError, isConnectionError } from './errors.js';
import { leaseMillis, leaseParam, query } from './sql.js';
import type { BatchJob, Lease } from './types.js';

/** What a handler gets with each job. */
export interface JobContext {
	/** The worker name this job is claimed under. */
	readonly worker: string;
	/** The attempt of this claim (the job's `attempts` when claimed). */
	readonly attempt: number;
	/**
	 * Aborted when the job is no longer this worker's (cancelled, reaped,
	 * claimed by another worker) or when a shutdown stops waiting for it.
	 * Pass it on to whatever the handler awaits.
	 */
	readonly signal: AbortSignal;
	/**
	 * Records the job's figures so far (batchjob_progress, absolute
	 * values).  Throws ConflictError when the job is no longer this
	 * worker's.
	 */
	progress(figures: Figures): Promise<void>;
}

/**
 * A handler's result: nothing (complete as is), or the job's final figures
 * (reported, then completed).  A handler that throws fails the job; with
 * retry unless the error has `retry: false` (see JobFailure).
 */
export type JobResult = void | Figures;

export type Handler<C> = (job: BatchJob<C>, ctx: JobContext) => Promise<JobResult> | JobResult;

/** Throw this from a handler to fail a job with or without retry. */
export class JobFailure extends Error {
	readonly retry: boolean;
	constructor(message: string, options: { retry?: boolean; cause?: unknown } = {}) {
		super(message, { cause: options.cause });
		this.name = 'JobFailure';
		this.retry = options.retry ?? true;
	}
}

export interface WorkerOptions<C> {
	pool: Pool;
	/** A prefix for the worker name (default 'worker'); host, pid and a random suffix follow. */
	name?: string;
	/** Jobs run at once (default 1). */
	concurrency?: number;
	/**
	 * At most this many jobs per claim (default: concurrency).  Above
	 * concurrency, the worker holds up to batchSize claimed jobs: those
	 * waiting for a slot are leased and heartbeated like running ones, and
	 * handed back at shutdown without running.
	 */
	batchSize?: number;
	/** Each claim's lease (ms or interval text, default 5 minutes); heartbeats go every third of it. */
	lease?: Lease;
	handler: Handler<C>;
	/** Poll when no notification comes, every pollIntervalMs ±50% (default 2000). */
	pollIntervalMs?: number;
	/** How long stop() waits for jobs in flight before failing them with retry (default 30000). */
	shutdownTimeoutMs?: number;
	/** Signals that stop the worker gracefully (default SIGTERM and SIGINT); false for none. */
	handleSignals?: boolean | NodeJS.Signals[];
	/** Aborting it stops the worker gracefully. */
	signal?: AbortSignal;
	/** The extension's schema, when it is not on the search_path. */
	schema?: string;
}

export interface FailedInfo {
	/** Whether the job was failed with retry (it goes back to PENDING while attempts remain). */
	retry: boolean;
	/** The job was released at shutdown, not failed by its handler. */
	released: boolean;
	/** The job's row after the fail, when the server returned it. */
	row: BatchJob<unknown> | null;
}

export interface WorkerEvents<C> {
	'job:start': [job: BatchJob<C>];
	'job:done': [job: BatchJob<C>];
	'job:failed': [job: BatchJob<C>, error: unknown, info: FailedInfo];
	/** The job was taken from this worker (heartbeat refused, cancelled, reaped). */
	'job:lost': [job: BatchJob<C>, reason: string];
	error: [error: unknown];
	stopped: [];
}

/** Claims on their way at once, when batchSize is above concurrency. */
const PIPELINE = 2;

const SETTLED: Promise<void> = Promise.resolve();

/** A batched complete's outcome: the job as claimed, COMPLETED (copied only for job:done's listeners). */
const COMPLETED = { kind: 'ok', value: undefined } as const;

type Outcome<T> =
	| { kind: 'ok'; value: T }
	| { kind: 'conflict'; error: ConflictError; ambiguous: boolean }
	| { kind: 'error'; error: unknown };

interface Running<C> {
	job: BatchJob<C>;
	attempt: number;
	/**
	 * Made when the handler first reads ctx.signal (most short jobs never
	 * do); until then `aborted` keeps the reason, and a signal read after
	 * the abort is made aborted.
	 */
	abort: AbortController | undefined;
	aborted: { reason: unknown } | undefined;
	/** The jobs taken up together, whose heartbeats share one timer. */
	beats: BeatGroup<C>;
	beatsDone: boolean;
	/** queued → running → finishing (completing/failing) → done; or lost / released */
	state: 'queued' | 'running' | 'finishing' | 'done' | 'lost' | 'released';
	settled: Promise<void>;
}

/**
 * The jobs one claim (or one adopt) took up at the same moment: their
 * heartbeats fall due together, every third of the lease from then, so
 * one interval timer beats each of them that is still held, instead of a
 * timer per job; it is cleared when the last of them is settled.
 */
interface BeatGroup<C> {
	members: Running<C>[];
	held: number;
	timer: NodeJS.Timeout | undefined;
}

/** A completion waiting for the next batched complete; the outcome's value undefined: the job as claimed, COMPLETED. */
interface Completion<C> {
	r: Running<C>;
	resolve: (out: Outcome<BatchJob<C> | undefined>) => void;
}

export class Worker<C = unknown> extends EventEmitter<WorkerEvents<C>> {
	/** The worker name every claim is made under. */
	readonly id: string;
	readonly api: BatchJobs<C>;
	private readonly pool: Pool;
	private readonly handler: Handler<C>;
	private readonly concurrency: number;
	private readonly batchSize: number;
	private readonly lease: Lease;
	private leaseMs = 300_000;
	/** The lease as every call passes it (leaseParam), worked out on first use. */
	private leaseText: string | undefined;
	private readonly pollIntervalMs: number;
	private readonly shutdownTimeoutMs: number;
	private readonly signals: NodeJS.Signals[];
	private readonly externalSignal: AbortSignal | undefined;

	private readonly active = new Map<bigint, Running<C>>();
	/** Claimed jobs waiting for a free slot (only when batchSize > concurrency). */
	private readonly queued: Running<C>[] = [];
	/** Handlers running now: what concurrency bounds. */
	private running = 0;
	/** Completions waiting for the next batched complete. */
	private completions: Completion<C>[] = [];
	/** A flush of the completions is due (setImmediate), and how many are on their way. */
	private flushDue = false;
	private flushing = 0;
	/** Jobs the claims on their way asked for (complete-and-claim calls included). */
	private reserved = 0;
	/** Batched completes that also claim, on their way (see flushCompletions). */
	private readonly rides = new Set<Promise<unknown>>();
	/**
	 * Room those calls leave for another that claims: each holds its jobs
	 * until it commits and its claim from then on, so the smaller of the
	 * two is room either way.
	 */
	private riddenOut = 0;
	/** The server has no batchjob_complete_and_claim for this role (older extension, no grant). */
	private noCompleteAndClaim = false;
	/** The last claim came back short (the queue is empty for now), or failed. */
	private drained = false;
	private claimFailed = false;
	/** Most jobs held at once, and most claims on their way at once. */
	private readonly capacity: number;
	private readonly pipeline: number;
	private stopping = false;
	private started = false;
	private stopPromise: Promise<void> | undefined;
	private loopDone: Promise<void> = Promise.resolve();
	private listenDone: Promise<void> = Promise.resolve();
	private listenClient: PoolClient | undefined;
	private dropListenClient: (() => void) | undefined;
	private needAdopt = false;
	/** Jobs settled while adopt() reads: its rows may still show them PROCESSING. */
	private settledWhileAdopting: Set<bigint> | undefined;
	/** Resolved when stop() is called. */
	private readonly stopSignal: Promise<void>;
	private resolveStop: () => void = () => undefined;
	private kicked = false;
	private wakeWaiter: (() => void) | undefined;
	private readonly onSignal = (): void => {
		void this.stop();
	};
	private readonly onPoolError = (err: Error): void => {
		this.emitError(err);
	};
	private readonly onAbort = (): void => {
		void this.stop();
	};

	constructor(options: WorkerOptions<C>) {
		super();
		this.pool = options.pool;
		this.api = new BatchJobs<C>(options.pool, options.schema !== undefined ? { schema: options.schema } : {});
		this.handler = options.handler;
		this.concurrency = options.concurrency ?? 1;
		this.batchSize = options.batchSize ?? this.concurrency;
		if (!Number.isInteger(this.concurrency) || this.concurrency < 1)
			throw new RangeError(`concurrency must be a positive integer: ${this.concurrency}`);
		if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
			throw new RangeError(`batchSize must be a positive integer: ${this.batchSize}`);
		/*
		 * batchSize at most concurrency: one claim at a time, for the free
		 * slots, as many as batchSize.  Above it: up to PIPELINE claims of
		 * batchSize on their way or waiting to run.
		 */
		this.pipeline = this.batchSize > this.concurrency ? PIPELINE : 1;
		this.capacity = this.pipeline === 1 ? this.concurrency : PIPELINE * this.batchSize;
		this.lease = options.lease ?? '5 minutes';
		this.pollIntervalMs = options.pollIntervalMs ?? 2000;
		this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
		const hs = options.handleSignals ?? true;
		this.signals = hs === true ? ['SIGTERM', 'SIGINT'] : hs === false ? [] : hs;
		this.externalSignal = options.signal;
		this.stopSignal = new Promise<void>((resolve) => {
			this.resolveStop = resolve;
		});
		this.id = `${options.name ?? 'worker'}:${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
	}

	private get leaseArg(): string {
		return (this.leaseText ??= leaseParam(this.lease));
	}

	/** Jobs running now. */
	get inFlight(): number {
		return this.active.size;
	}

	/** Starts claiming; resolves once the worker is running. */
	async start(): Promise<void> {
		if (this.started)
			throw new Error('worker already started');
		this.started = true;
		this.leaseMs = await leaseMillis(this.pool, this.lease);
		if (!(this.leaseMs > 0))
			throw new RangeError(`lease must be positive: ${String(this.lease)}`);
		this.pool.on('error', this.onPoolError);
		for (const s of this.signals)
			process.on(s, this.onSignal);
		this.externalSignal?.addEventListener('abort', this.onAbort, { once: true });
		this.listenDone = this.listenLoop();
		this.loopDone = this.claimLoop();
		if (this.externalSignal?.aborted === true)
			void this.stop();
	}

	/** Starts, and resolves when the worker has stopped. */
	async run(): Promise<void> {
		await this.start();
		await new Promise<void>((resolve) => this.once('stopped', resolve));
	}

	/**
	 * Stops gracefully: no more claims; waits up to shutdownTimeoutMs for
	 * the jobs in flight, then aborts the rest and fails them with retry,
	 * so another worker takes them.  Resolves once every job is settled.
	 */
	stop(): Promise<void> {
		this.stopPromise ??= this.shutdown();
		return this.stopPromise;
	}

	private async shutdown(): Promise<void> {
		this.stopping = true;
		this.resolveStop();
		this.kick();
		this.dropListenClient?.();
		await this.loopDone;
		await this.listenDone;
		/* the jobs a complete-and-claim on its way brings are handed back below too */
		await Promise.all(this.rides);

		/* jobs that never started go back at once */
		const unstarted = this.queued.splice(0).map((r) => this.release(r));
		await Promise.all(unstarted);

		const settled = Promise.all([...this.active.values()].map((r) => r.settled));
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([
			settled,
			new Promise<void>((resolve) => {
				timer = setTimeout(resolve, this.shutdownTimeoutMs);
			}),
		]);
		clearTimeout(timer);

		/* whatever still runs is handed back: failed with retry */
		const releases: Promise<void>[] = [];
		for (const r of this.active.values()) {
			if (r.state === 'running')
				releases.push(this.release(r));
			else
				releases.push(r.settled);
		}
		await Promise.all(releases);

		this.pool.removeListener('error', this.onPoolError);
		for (const s of this.signals)
			process.removeListener(s, this.onSignal);
		this.externalSignal?.removeEventListener('abort', this.onAbort);
		this.emit('stopped');
	}

	private emitError(err: unknown): void {
		if (this.listenerCount('error') > 0)
			this.emit('error', err);
	}

	/* ---- waking up ---------------------------------------------------- */

	/** Wakes the claim loop (a notification, a free slot, a stop). */
	private kick(): void {
		this.kicked = true;
		const w = this.wakeWaiter;
		this.wakeWaiter = undefined;
		w?.();
	}

	/** Waits for a kick or ms, whichever comes first. */
	private async idle(ms: number): Promise<void> {
		if (this.kicked || this.stopping) {
			this.kicked = false;
			return;
		}
		let timer: NodeJS.Timeout | undefined;
		await new Promise<void>((resolve) => {
			this.wakeWaiter = resolve;
			timer = setTimeout(resolve, ms);
		});
		clearTimeout(timer);
		this.wakeWaiter = undefined;
		this.kicked = false;
	}

	private jitter(ms: number): number {
		return ms * (0.5 + Math.random());
	}

	/* ---- LISTEN batchjob_jobs_available --------------------------------- */

	/**
	 * Holds one connection that LISTENs; when it is lost, takes another
	 * after a backoff and wakes the claim loop (a notification may have
	 * been missed meanwhile).
	 */
	private async listenLoop(): Promise<void> {
		let backoff = 100;
		while (!this.stopping) {
			let client: PoolClient | undefined;
			let broken: Error | undefined;
			try {
				client = await this.pool.connect();
				const c = client;
				const lost = new Promise<void>((resolve) => {
					const onNotification = (msg: Notification): void => {
						if (msg.channel === CHANNEL_JOBS_AVAILABLE)
							this.kick();
					};
					const onError = (err: Error): void => {
						broken = err;
						resolve();
					};
					c.on('notification', onNotification);
					c.on('error', onError);
					c.on('end', () => resolve());
					this.dropListenClient = () => resolve();
				});
				await query(c, `LISTEN ${CHANNEL_JOBS_AVAILABLE}`);
				this.listenClient = c;
				backoff = 100;
				this.kick();
				if (this.stopping)
					break;
				await lost;
				if (!this.stopping && broken !== undefined)
					this.emitError(broken);
			} catch (err) {
				broken = err instanceof Error ? err : new Error(String(err));
				if (!this.stopping)
					this.emitError(err);
			} finally {
				this.listenClient = undefined;
				this.dropListenClient = undefined;
				if (client !== undefined) {
					client.removeAllListeners('notification');
					/* a client that LISTENed is closed, not handed to anyone else */
					client.release(broken ?? true);
				}
			}
			if (!this.stopping) {
				await this.sleepUnlessStopping(this.jitter(backoff));
				backoff = Math.min(backoff * 2, 5000);
			}
		}
	}

	/** Sleeps ms, or less when the worker stops meanwhile. */
	private async sleepUnlessStopping(ms: number): Promise<void> {
		if (this.stopping)
			return;
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([
			this.stopSignal,
			new Promise<void>((resolve) => {
				timer = setTimeout(resolve, ms);
			}),
		]);
		clearTimeout(timer);
	}

	/* ---- claiming ------------------------------------------------------- */

	private async claimLoop(): Promise<void> {
		let backoff = 100;
		const claims = new Set<Promise<void>>();
		while (!this.stopping) {
			if (this.claimFailed) {
				this.claimFailed = false;
				await this.idle(this.jitter(backoff));
				backoff = Math.min(backoff * 2, 5000);
				continue;
			}
			if (this.needAdopt) {
				/* an answer still on its way would be adopted twice */
				if (claims.size > 0 || this.rides.size > 0) {
					await this.idle(this.pollIntervalMs);
					continue;
				}
				try {
					await this.adopt();
					this.needAdopt = false;
				} catch (err) {
					this.emitError(err);
					await this.idle(this.jitter(backoff));
					backoff = Math.min(backoff * 2, 5000);
					continue;
				}
			}
			if (this.drained) {
				/* the queue is empty for now: wait for a notification, a free slot or the poll */
				this.drained = false;
				await this.idle(this.jitter(this.pollIntervalMs));
				continue;
			}
			/*
			 * Jobs held: running, finishing, waiting for a slot, or asked
			 * for by a claim on its way.  With batchSize above concurrency
			 * the next claims go out while the last one's jobs still run
			 * (up to `pipeline` at once), so the slots never wait for a
			 * round trip.
			 */
			const free = this.capacity - this.active.size - this.queued.length - this.reserved;
			if (free <= 0 || this.queued.length >= this.concurrency || claims.size >= this.pipeline) {
				await this.idle(this.pollIntervalMs);
				continue;
			}
			const want = Math.min(free, this.batchSize);
			this.reserved += want;
			const claim = this.claimSome(want).then((ok) => {
				if (ok)
					backoff = 100;
			}).catch((err: unknown) => this.emitError(err)).finally(() => {
				this.reserved -= want;
				claims.delete(claim);
				/*
				 * The loop may be waiting for this claim (room for the next,
				 * a failure to back off from, an empty queue to wait on).
				 * With one claim at a time it awaits the claim itself: a kick
				 * then would end its next wait at once, and it would poll an
				 * empty queue without pause.
				 */
				if (this.pipeline > 1)
					this.kick();
			});
			claims.add(claim);
			if (this.pipeline === 1)
				await claim;
		}
		/* answers still on their way are taken up, then handed back by shutdown */
		await Promise.all(claims);
	}

	/** One claim of up to `want` jobs; false when it failed. */
	private async claimSome(want: number): Promise<boolean> {
		let jobs: BatchJob<C>[];
		try {
			jobs = await this.api.claim(this.id, { maxJobs: want, lease: this.leaseArg });
		} catch (err) {
			this.emitError(err);
			/* the claim may have committed without its answer reaching us */
			if (isConnectionError(err))
				this.needAdopt = true;
			this.claimFailed = true;
			return false;
		}
		this.takeClaimed(jobs, want);
		return true;
	}

	/** Takes up the jobs a claim of `want` returned; fewer means the queue is empty for now. */
	private takeClaimed(jobs: BatchJob<C>[], want: number): void {
		this.enqueue(jobs);
		if (jobs.length < want)
			this.drained = true;
		this.startQueued();
	}

	/**
	 * Takes up the jobs PROCESSING under this worker's name that it does not
	 * know of: those of a claim whose answer was lost with its connection.
	 */
	private async adopt(): Promise<void> {
		/* a job completed while the read is on its way would be taken up again */
		const settled = new Set<bigint>();
		this.settledWhileAdopting = settled;
		let rows: BatchJob<C>[];
		try {
			rows = await query<BatchJob<C> & Record<string, unknown>>(
				this.pool,
				`SELECT * FROM ${this.api.qualify('batch_jobs')} WHERE locked_by = $1 AND status = 'PROCESSING' ORDER BY job_id`,
				[this.id],
			);
		} finally {
			this.settledWhileAdopting = undefined;
		}
		this.enqueue(rows.filter((job) =>
			!settled.has(job.job_id) && !this.active.has(job.job_id) && !this.queued.some((r) => r.job.job_id === job.job_id)));
		this.startQueued();
	}

	/* ---- one job ---------------------------------------------------------- */

	/** Claimed jobs: leased and heartbeated from now on, each started when a slot is free. */
	private enqueue(jobs: BatchJob<C>[]): void {
		if (jobs.length === 0)
			return;
		const beats: BeatGroup<C> = { members: [], held: jobs.length, timer: undefined };
		for (const job of jobs) {
			const r: Running<C> = {
				job,
				attempt: job.attempts,
				abort: undefined,
				aborted: undefined,
				beats,
				beatsDone: false,
				state: 'queued',
				settled: SETTLED,
			};
			beats.members.push(r);
			this.queued.push(r);
		}
		beats.timer = setInterval(() => {
			for (const r of beats.members)
				void this.beat(r);
		}, Math.max(1, this.leaseMs / 3));
	}

	/** Starts waiting jobs while slots are free (none once stopping). */
	private startQueued(): void {
		while (!this.stopping && this.running < this.concurrency) {
			const r = this.queued.shift();
			if (r === undefined)
				return;
			if (r.state === 'queued')
				this.begin(r);
		}
	}

	private begin(r: Running<C>): void {
		const { job } = r;
		r.state = 'running';
		this.active.set(job.job_id, r);
		this.running++;
		this.emit('job:start', job);
		/* own properties, as a handler may destructure or spread it; the signal is made when read */
		const ctx: JobContext = {
			worker: this.id,
			attempt: r.attempt,
			get signal(): AbortSignal {
				if (r.abort === undefined) {
					r.abort = new AbortController();
					if (r.aborted !== undefined)
						r.abort.abort(r.aborted.reason);
				}
				return r.abort.signal;
			},
			progress: (figures: Figures) => this.progressOf(r, figures),
		};
		r.settled = (async () => {
			let result: JobResult = undefined;
			let failed = false;
			let error: unknown;
			try {
				result = await this.handler(job, ctx);
			} catch (err) {
				failed = true;
				error = err;
			}
			/* the slot frees as the handler returns; the job is held until it is finished */
			this.running--;
			this.startQueued();
			this.kick();
			if (failed)
				await this.finishFailed(r, error);
			else
				await this.finishDone(r, result);
		})().catch((err: unknown) => this.emitError(err));
	}

	/** ctx.progress: records a running job's figures under its claim. */
	private async progressOf(r: Running<C>, figures: Figures): Promise<void> {
		const out = await this.retrying(() =>
			this.api.reportProgress(r.job.job_id, figures, { worker: this.id, attempt: r.attempt }),
		);
		if (out.kind === 'ok')
			return;
		if (out.kind === 'conflict') {
			this.lose(r, out.error.message);
			throw out.error;
		}
		throw out.error;
	}

	/** Aborts a job's signal (made aborted if the handler reads it later). */
	private abortJob(r: Running<C>, reason: unknown): void {
		if (r.abort !== undefined)
			r.abort.abort(reason);
		else
			r.aborted ??= { reason };
	}

	/** Extends the lease; a refusal means the job was taken away. */
	private async beat(r: Running<C>): Promise<void> {
		if (r.state !== 'running' && r.state !== 'queued')
			return;
		try {
			const ok = await this.api.heartbeat(r.job.job_id, this.id, {
				lease: this.leaseArg,
				attempt: r.attempt,
			});
			if (!ok && (r.state === 'running' || r.state === 'queued'))
				this.lose(r, 'heartbeat refused: the job is no longer held by this claim');
		} catch (err) {
			/* a lost connection: the next beat tries again */
			this.emitError(err);
		}
	}

	/** Forget a job that is no longer ours: abort its handler, report it lost. */
	private lose(r: Running<C>, reason: string): void {
		if (r.state === 'done' || r.state === 'lost')
			return;
		r.state = 'lost';
		this.settle(r);
		this.abortJob(r, new ConflictError({ message: reason, code: '55000' }));
		this.emit('job:lost', r.job, reason);
	}

	private settle(r: Running<C>): void {
		if (!r.beatsDone) {
			r.beatsDone = true;
			if (--r.beats.held === 0) {
				clearInterval(r.beats.timer);
				r.beats.members.length = 0;
			}
		}
		this.settledWhileAdopting?.add(r.job.job_id);
		if (this.active.get(r.job.job_id) === r)
			this.active.delete(r.job.job_id);
		const i = this.queued.indexOf(r);
		if (i >= 0)
			this.queued.splice(i, 1);
		this.kick();
	}

	private async finishDone(r: Running<C>, result: JobResult): Promise<void> {
		if (r.state !== 'running')
			return;
		r.state = 'finishing';
		const claim: ClaimRef = { worker: this.id, attempt: r.attempt };
		if (result !== undefined && result !== null) {
			const rep = await this.retrying(() => this.api.reportProgress(r.job.job_id, result, claim));
			if (rep.kind === 'conflict') {
				this.finalLost(r, rep.error.message);
				return;
			}
			if (rep.kind === 'error') {
				/* figures the server refused (above total, say): the job fails */
				r.state = 'running';
				await this.finishFailed(r, rep.error);
				return;
			}
		}
		/* batch mode (batchSize above concurrency) completes jobs together */
		const out = this.pipeline > 1
			? await this.completeBatched(r)
			: await this.retrying(() => this.api.complete(r.job.job_id, claim));
		if (out.kind === 'ok') {
			r.state = 'done';
			this.settle(r);
			/* the copy is only made for someone to see */
			if (this.listenerCount('job:done') > 0)
				this.emit('job:done', out.value ?? { ...r.job, status: 'COMPLETED' });
			return;
		}
		if (out.kind === 'conflict' && out.ambiguous) {
			/* a complete whose answer was lost may have committed */
			const row = await this.readBack(r);
			if (row !== null && row.status === 'COMPLETED' && row.attempts === r.attempt) {
				r.state = 'done';
				this.settle(r);
				this.emit('job:done', row);
				return;
			}
		}
		if (out.kind === 'error')
			this.emitError(out.error);
		this.finalLost(r, errorMessage(out.error));
	}

	private async finishFailed(r: Running<C>, err: unknown): Promise<void> {
		if (r.state !== 'running')
			return;
		r.state = 'finishing';
		const retry = !(typeof err === 'object' && err !== null && (err as { retry?: unknown }).retry === false);
		await this.failJob(r, err, retry, false);
	}

	/** Shutdown: abort a job still running and fail it with retry. */
	private async release(r: Running<C>): Promise<void> {
		if (r.state !== 'running' && r.state !== 'queued')
			return;
		r.state = 'released';
		this.abortJob(r, new Error(`worker ${this.id} is shutting down`));
		const err = new Error(`worker ${this.id} shut down before the job finished`);
		await this.failJob(r, err, true, true);
	}

	private async failJob(r: Running<C>, err: unknown, retry: boolean, released: boolean): Promise<void> {
		const details = errorMessage(err);
		const out = await this.retrying(() =>
			this.api.fail(r.job.job_id, details, { retry, worker: this.id, attempt: r.attempt }),
		);
		if (out.kind === 'ok') {
			r.state = 'done';
			this.settle(r);
			this.emit('job:failed', r.job, err, { retry, released, row: out.value });
			return;
		}
		if (out.kind === 'conflict' && out.ambiguous) {
			const row = await this.readBack(r);
			if (row !== null && row.attempts === r.attempt && row.status !== 'PROCESSING' &&
				row.error_details === details) {
				r.state = 'done';
				this.settle(r);
				this.emit('job:failed', r.job, err, { retry, released, row });
				return;
			}
		}
		if (out.kind === 'error')
			this.emitError(out.error);
		this.finalLost(r, errorMessage(out.error));
	}

	private finalLost(r: Running<C>, reason: string): void {
		r.state = 'running';
		this.lose(r, reason);
	}

	/* ---- completing in batches ------------------------------------------ */

	/**
	 * Completes a job together with the others that finish meanwhile: one
	 * batchjob_complete(bigint[], worker) for all of them, so one
	 * transaction, one commit and one round trip (a commit per job is what
	 * bounds a worker of short jobs; the array form also rolls each parent
	 * up once per statement, where a call per job would do it per job,
	 * about 7 times the server time in a try).  When the worker has room
	 * for more jobs, the same call claims them too
	 * (batchjob_complete_and_claim): the claim rides on the completion's
	 * commit instead of taking a round trip and a commit of its own.
	 * Either form is all or nothing: when it fails (a job no longer ours
	 * fails it whole), each job of it is completed on its own, as without
	 * batching; after a lost connection, as a call whose answer was lost.
	 * It returns a count or the claimed jobs, not the completed rows:
	 * job:done then gets the job as claimed, status COMPLETED.
	 */
	private completeBatched(r: Running<C>): Promise<Outcome<BatchJob<C> | undefined>> {
		return new Promise((resolve) => {
			this.completions.push({ r, resolve });
			this.flushSoon();
		});
	}

	/**
	 * Sends the completions waiting, once the handlers that finish in this
	 * turn have joined them (setImmediate), while fewer than `pipeline`
	 * calls are on their way.  Two on their way at once let the server
	 * work on one batch while this process takes up the other's answer and
	 * runs its handlers: one at a time, each waited for the other.
	 */
	private flushSoon(): void {
		if (this.flushDue || this.flushing >= this.pipeline || this.completions.length === 0)
			return;
		this.flushDue = true;
		setImmediate(() => {
			this.flushDue = false;
			if (this.flushing >= this.pipeline || this.completions.length === 0)
				return;
			this.flushing++;
			void this.flushCompletions().finally(() => {
				this.flushing--;
				this.flushSoon();
			});
		});
	}

	/** One batched complete (claiming the room it leaves) of the completions waiting, at most 1000. */
	private async flushCompletions(): Promise<void> {
		const all = this.completions.splice(0, 1000);
		/*
		 * The array form checks the worker, not the attempt: a job this
		 * worker holds twice (lost, then claimed again) goes alone.
		 */
		const queuedIds = this.queued.length > 0 ? new Set(this.queued.map((q) => q.job.job_id)) : undefined;
		const batch: Completion<C>[] = [];
		const single: Completion<C>[] = [];
		for (const c of all) {
			const id = c.r.job.job_id;
			if (this.active.get(id) === c.r && queuedIds?.has(id) !== true)
				batch.push(c);
			else
				single.push(c);
		}
		const want = this.roomAfter(batch.length);
		let lost = false;
		if (batch.length > 0 && want > 0) {
			/* no await between roomAfter() and here: the call is counted before anything else runs */
			const ride = this.completeAndClaim(batch, want);
			this.rides.add(ride);
			const out = await ride;
			this.rides.delete(ride);
			/* claimLoop may wait for this answer (room, adopt) */
			this.kick();
			if (out === 'ok')
				batch.length = 0;
			lost = out === 'lost';
		} else if (batch.length > 1) {
			try {
				const n = await this.api.complete(batch.map((b) => b.r.job.job_id), { worker: this.id });
				if (n === BigInt(batch.length)) {
					for (const { resolve } of batch)
						resolve(COMPLETED);
					batch.length = 0;
				}
			} catch (err) {
				lost = isConnectionError(err);
				if (lost)
					this.emitError(err);
			}
		}
		for (const { r, resolve } of [...batch, ...single]) {
			void this.retrying(() => this.api.complete(r.job.job_id, { worker: this.id, attempt: r.attempt }), lost)
				.then(resolve);
		}
	}

	/**
	 * Completes the batch's jobs and claims up to `want` in one call,
	 * reserving `want` as claimLoop reserves a claim's, so that it does not
	 * claim the same room meanwhile.  Resolves once the claimed jobs are
	 * taken up (shutdown and adopt() wait for that), with 'ok' when the
	 * batch is completed, 'lost' when the connection failed (both halves
	 * may have committed: the claimed jobs are left to adopt()), 'failed'
	 * when the server refused it (nothing committed).
	 */
	private async completeAndClaim(batch: Completion<C>[], want: number): Promise<'ok' | 'lost' | 'failed'> {
		/* the room it leaves (riddenOut): the smaller of what it completes and what it claims */
		const out = Math.min(batch.length, want);
		this.reserved += want;
		this.riddenOut += out;
		try {
			const jobs = await this.api.completeAndClaim(batch.map((b) => b.r.job.job_id), this.id, {
				maxJobs: want,
				lease: this.leaseArg,
			});
			for (const { resolve } of batch)
				resolve(COMPLETED);
			this.takeClaimed(jobs, want);
			return 'ok';
		} catch (err) {
			if (isConnectionError(err)) {
				this.emitError(err);
				this.needAdopt = true;
				return 'lost';
			}
			if (isMissingFunction(err))
				this.noCompleteAndClaim = true;
			return 'failed';
		} finally {
			this.reserved -= want;
			this.riddenOut -= out;
		}
	}

	/**
	 * How many jobs a complete of `completing` held jobs may claim: the
	 * room claimLoop would see once they are finished, at most batchSize.
	 * Other such calls on their way leave room too (riddenOut): whichever
	 * commits first, the worker never holds more than capacity on the
	 * server, and a call that fails whole gives its room back as its jobs
	 * stay.  None while stopping (a stopping worker claims nothing), while
	 * a lost claim's jobs wait to be adopted (adopt() and this answer would
	 * both take them up), or when the server lacks the call.
	 */
	private roomAfter(completing: number): number {
		if (this.stopping || this.needAdopt || this.noCompleteAndClaim)
			return 0;
		const free = this.capacity - (this.active.size - completing - this.riddenOut) - this.queued.length - this.reserved;
		return Math.max(0, Math.min(free, this.batchSize));
	}

	/** The job's row now, read again until the connection allows. */
	private async readBack(r: Running<C>): Promise<BatchJob<C> | null> {
		const out = await this.retrying(() => this.api.get(r.job.job_id));
		return out.kind === 'ok' ? out.value : null;
	}

	/**
	 * Runs a call, again on another connection while the connection is
	 * what failed, for at most one lease (after that the job is not ours
	 * anyway).  `ambiguous` tells a conflict after a lost answer, where
	 * the first try may have done the work, from a plain conflict.
	 */
	private async retrying<T>(call: () => Promise<T>, lostBefore = false): Promise<Outcome<T>> {
		const deadline = Date.now() + this.leaseMs;
		let ambiguous = lostBefore;
		let backoff = 50;
		for (;;) {
			try {
				return { kind: 'ok', value: await call() };
			} catch (err) {
				if (err instanceof ConflictError)
					return { kind: 'conflict', error: err, ambiguous };
				if (!isConnectionError(err) || Date.now() > deadline)
					return { kind: 'error', error: err };
				this.emitError(err);
				ambiguous = true;
				await new Promise((resolve) => setTimeout(resolve, this.jitter(backoff)));
				backoff = Math.min(backoff * 2, 2000);
			}
		}
	}
}

/** The call does not exist, or this role may not run it: a server without batchjob_complete_and_claim. */
function isMissingFunction(err: unknown): boolean {
	const code = (err as { code?: unknown } | null)?.code;
	return code === '42883' || code === '42501';
}

function errorMessage(err: unknown): string {
	if (err instanceof Error)
		return err.message;
	return String(err);
}
