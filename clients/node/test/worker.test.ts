/*
 * test/worker.test.ts - the worker runner: 8 at a time over 2,000 children
 * with injected failures (each job finished once, sums exact, verify()
 * empty), and its connections terminated in the middle of a batch (no job
 * lost or doubled, the LISTEN connection comes back); both also in batch
 * mode (batchSize 100 above concurrency 8); and batch mode's completes
 * that claim in the same call (batchjob_complete_and_claim), except while
 * the worker stops, two of them on their way at once, and when one's
 * answer is lost or it is refused.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import pg from 'pg';

import { BatchJobs, ConflictError, JobFailure, Worker, type BatchJob } from 'batchjob';

import { eventually, gate, testDb, type TestDb } from './helpers.js';

let db: TestDb;
let api: BatchJobs;

before(async () => {
	db = await testDb('worker');
	api = new BatchJobs(db.pool);
});

after(async () => {
	await db.close();
});

/** Counts how often each job was reported done, or failed for good, by the worker's events. */
function audit(worker: Worker): { done: Map<bigint, number>; finalFailed: Map<bigint, number>; retried: Map<bigint, number>; lost: bigint[]; errors: unknown[] } {
	const a = {
		done: new Map<bigint, number>(),
		finalFailed: new Map<bigint, number>(),
		retried: new Map<bigint, number>(),
		lost: [] as bigint[],
		errors: [] as unknown[],
	};
	const inc = (m: Map<bigint, number>, id: bigint): void => {
		m.set(id, (m.get(id) ?? 0) + 1);
	};
	worker.on('job:done', (job) => inc(a.done, job.job_id));
	worker.on('job:failed', (job, _err, info) => {
		if (info.row?.status === 'FAILED')
			inc(a.finalFailed, job.job_id);
		else
			inc(a.retried, job.job_id);
	});
	worker.on('job:lost', (job) => a.lost.push(job.job_id));
	worker.on('error', (err) => a.errors.push(err));
	return a;
}

/* each runner test runs as is, and in batch mode (batchSize above concurrency: prefetch, completes in one call) */
const MODES = [
	{ label: '', batchSize: 8 },
	{ label: ', batch mode (batchSize 100)', batchSize: 100 },
];

for (const mode of MODES) test(`8 at a time over 2,000 children with injected failures${mode.label}`, async () => {
	const CHILDREN = 2000;
	const SIZE = 10;
	const parent = await api.createParent({ run: 'main' }, 'tester');
	await api.split(parent.job_id, CHILDREN * SIZE, SIZE);

	const started = new Map<bigint, number>();
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 12 }),
		name: 'main',
		concurrency: 8,
		batchSize: mode.batchSize,
		lease: '1 minute',
		pollIntervalMs: 100,
		handleSignals: false,
		handler: async (job: BatchJob, ctx) => {
			started.set(job.job_id, (started.get(job.job_id) ?? 0) + 1);
			const bn = job.batch_number ?? 0;
			if (bn % 100 === 0)
				throw new JobFailure(`batch ${bn} is broken`, { retry: false });
			if (bn % 37 === 0 && ctx.attempt === 1)
				throw new Error(`batch ${bn} failed once`);
			if (bn % 5 === 0)
				await ctx.progress({ processed: 5, succeeded: 5, failed: 0 });
			await new Promise((resolve) => setImmediate(resolve));
			return { processed: SIZE, succeeded: SIZE - (bn % 3), failed: bn % 3 };
		},
	});
	const a = audit(worker);
	await worker.start();
	await eventually(
		() => a.done.size + a.finalFailed.size === CHILDREN,
		'every child to be completed or failed for good',
	);
	await worker.stop();

	/* each job finished exactly once, either way */
	for (const [id, n] of a.done) {
		assert.equal(n, 1, `job ${id} completed ${n} times`);
		assert.ok(!a.finalFailed.has(id), `job ${id} both completed and failed`);
	}
	for (const [id, n] of a.finalFailed)
		assert.equal(n, 1, `job ${id} failed ${n} times`);
	assert.deepEqual(a.lost, []);

	let expectDone = 0;
	let processed = 0n;
	let succeeded = 0n;
	let failed = 0n;
	let retries = 0;
	for (let bn = 1; bn <= CHILDREN; bn++) {
		if (bn % 100 === 0)
			continue;
		if (bn % 37 === 0)
			retries++;
		expectDone++;
		processed += BigInt(SIZE);
		succeeded += BigInt(SIZE - (bn % 3));
		failed += BigInt(bn % 3);
	}
	assert.equal(a.done.size, expectDone);
	assert.equal(a.finalFailed.size, CHILDREN - expectDone);
	assert.equal([...a.retried.values()].reduce((x, y) => x + y, 0), retries);

	const counts = await api.childCounts(parent.job_id);
	assert.deepEqual(counts, {
		pending: 0n, processing: 0n, completed: BigInt(expectDone), failed: BigInt(CHILDREN - expectDone), cancelled: 0n, total: BigInt(CHILDREN),
	});
	await api.fold(parent.job_id);
	const p = await api.get(parent.job_id);
	assert.equal(p?.status, 'COMPLETED');
	assert.equal(p?.error_details, `${CHILDREN - expectDone} out of ${CHILDREN} batch jobs failed`);
	assert.equal(p?.processed_records, processed);
	assert.equal(p?.success_count, succeeded);
	assert.equal(p?.error_count, failed);
	assert.deepEqual(await api.verify(), []);
	assert.equal(worker.inFlight, 0);
});

for (const mode of MODES) test(`connections terminated mid-batch: no job lost or doubled, LISTEN comes back${mode.label}`, async () => {
	const CHILDREN = 200;
	const app = `bj-node-kill-test-${mode.batchSize}`;
	const parent = await api.createParent({ run: 'kill' }, 'tester');
	await api.split(parent.job_id, CHILDREN, 1);

	const handlersGate = gate();
	const handled = new Map<bigint, number>();
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 12, application_name: app }),
		name: 'kill',
		concurrency: 8,
		batchSize: mode.batchSize,
		lease: '1 minute',
		/* no polling to speak of: after the kill only notifications and finished jobs wake it */
		pollIntervalMs: 600_000,
		handleSignals: false,
		handler: async (job: BatchJob, ctx) => {
			handled.set(job.job_id, (handled.get(job.job_id) ?? 0) + 1);
			if (!handlersGate.opened)
				await handlersGate.wait;
			await ctx.progress({ processed: 1, succeeded: 1, failed: 0 });
		},
	});
	const a = audit(worker);
	await worker.start();
	await eventually(() => worker.inFlight === 8, '8 jobs in flight behind the gate');

	/* every connection of the worker's pool, the LISTEN one included */
	const killed = await db.sql(
		`SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1`,
		[app],
	);
	assert.ok(Number(killed.rows[0].n) >= 2, 'the LISTEN connection and at least one more');
	await eventually(async () => {
		const r = await db.sql(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1`, [app]);
		return Number(r.rows[0].n) === 0;
	}, 'the terminated backends to be gone');
	handlersGate.open();

	await eventually(() => a.done.size === CHILDREN, 'every child completed after the kill');
	for (const [id, n] of a.done)
		assert.equal(n, 1, `job ${id} completed ${n} times`);
	for (const [id, n] of handled)
		assert.equal(n, 1, `job ${id} handled ${n} times`);
	assert.deepEqual(a.lost, []);
	assert.equal(a.finalFailed.size + a.retried.size, 0);
	assert.ok(a.errors.length > 0, 'the lost connections were reported as errors');
	/* no job was reaped and claimed again */
	const r = await db.sql(`SELECT max(attempts) AS m, count(*) FILTER (WHERE status = 'COMPLETED') AS c FROM batch_jobs WHERE parent_job_id = $1`, [parent.job_id]);
	assert.equal(r.rows[0].m, 1);
	assert.equal(r.rows[0].c, String(CHILDREN));

	/* the LISTEN connection is back: new work wakes the idle worker without a poll */
	await eventually(async () => {
		const l = await db.sql(
			`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
			[app],
		);
		return Number(l.rows[0].n) === 1;
	}, 'the worker to LISTEN again');
	const more = await api.createParent({ run: 'after' }, 'tester');
	await api.split(more.job_id, 10, 1);
	await eventually(async () => (await api.childCounts(more.job_id)).completed === 10n, 'the new children to be done');
	await worker.stop();
	assert.deepEqual(await api.verify(), []);
});

test('a job taken away is reported lost and its handler aborted', async () => {
	const parent = await api.createParent({ run: 'lost' }, 'tester');
	await api.split(parent.job_id, 1, 1);
	let aborted = false;
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 4 }),
		/* heartbeats every 300 ms */
		lease: 900,
		pollIntervalMs: 50,
		handleSignals: false,
		handler: async (_job, ctx) => {
			await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
			aborted = true;
			throw new Error('aborted');
		},
	});
	const a = audit(worker);
	await worker.start();
	await eventually(() => worker.inFlight === 1, 'the job to start');
	await api.cancel(parent.job_id);
	await eventually(() => a.lost.length === 1 && aborted, 'the heartbeat to find the job cancelled');
	await worker.stop();
	assert.equal(a.done.size + a.finalFailed.size + a.retried.size, 0);
	assert.equal((await api.childCounts(parent.job_id)).cancelled, 1n);
});

test('a signal read only after its job was taken away is aborted already; the rest of its claim keep their heartbeats', async () => {
	const parent = await api.createParent({ run: 'late-signal' }, 'tester');
	await api.split(parent.job_id, 3, 1);
	const victim = (await api.nextPending())!.job_id;
	const handlersGate = gate();
	const seen = new Map<bigint, { aborted: boolean; reason: unknown }>();
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 4 }),
		/* the three in one claim, heartbeats every 300 ms */
		concurrency: 3,
		batchSize: 3,
		lease: 900,
		pollIntervalMs: 50,
		handleSignals: false,
		handler: async (job, ctx) => {
			/* the signal is not read until the gate opens */
			await handlersGate.wait;
			seen.set(job.job_id, { aborted: ctx.signal.aborted, reason: ctx.signal.reason });
		},
	});
	const a = audit(worker);
	await worker.start();
	await eventually(() => worker.inFlight === 3, 'the three jobs to start');
	const leases = async (): Promise<Map<bigint, Date>> => {
		const r = await db.sql(`SELECT job_id, locked_until FROM batch_jobs WHERE parent_job_id = $1 AND job_id <> $2`,
			[parent.job_id.toString(), victim.toString()]);
		return new Map((r.rows as { job_id: string; locked_until: Date }[]).map((row) => [BigInt(row.job_id), row.locked_until]));
	};
	await api.cancel(victim);
	await eventually(() => a.lost.length === 1, 'the heartbeat to find the job cancelled');
	assert.deepEqual(a.lost, [victim]);
	/* the other two still beat: their leases move on after the loss */
	const before = await leases();
	await eventually(async () => {
		const now = await leases();
		return [...before].every(([id, t]) => now.get(id)!.getTime() > t.getTime());
	}, 'the other two jobs to be heartbeat again');
	handlersGate.open();
	await eventually(() => a.done.size === 2, 'the other two jobs to complete');
	await worker.stop();
	const v = seen.get(victim);
	assert.equal(v?.aborted, true);
	assert.ok(v?.reason instanceof ConflictError);
	assert.equal([...seen].filter(([id, s]) => id !== victim && !s.aborted).length, 2);
	assert.ok(!a.done.has(victim));
	assert.equal((await api.childCounts(parent.job_id)).completed, 2n);
});

test('a handler may destructure or spread its context', async () => {
	const parent = await api.createParent({ run: 'ctx' }, 'tester');
	await api.split(parent.job_id, 2, 1);
	const seen: { keys: string[]; signal: boolean; attempt: number }[] = [];
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 4 }),
		pollIntervalMs: 50,
		handleSignals: false,
		handler: async (_job, ctx) => {
			const { signal, progress, attempt } = ctx;
			await progress({ processed: 1, succeeded: 1, failed: 0 });
			seen.push({ keys: Object.keys({ ...ctx }).sort(), signal: signal instanceof AbortSignal && !signal.aborted, attempt });
		},
	});
	const a = audit(worker);
	await worker.start();
	await eventually(() => a.done.size === 2, 'both jobs to complete');
	await worker.stop();
	assert.deepEqual(seen, [
		{ keys: ['attempt', 'progress', 'signal', 'worker'], signal: true, attempt: 1 },
		{ keys: ['attempt', 'progress', 'signal', 'worker'], signal: true, attempt: 1 },
	]);
	/* progress() reached the server: each child has its figure */
	const r = await db.sql(`SELECT sum(processed_records)::int AS n FROM batch_jobs WHERE parent_job_id = $1`, [parent.job_id.toString()]);
	assert.equal(r.rows[0].n, 2);
});

test('completions ride on the next claim; a job of the batch taken away loses only itself', async () => {
	const parent = await api.createParent({ run: 'batched' }, 'tester');
	await api.split(parent.job_id, 6, 1);
	const victim = (await api.nextPending())!.job_id;
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 4 }),
		concurrency: 3,
		batchSize: 3,
		pollIntervalMs: 50,
		handleSignals: false,
		handler: async (job) => {
			/* the first job is cancelled after its handler succeeded, before the worker completes it */
			if (job.job_id === victim)
				await api.cancel(job.job_id);
		},
	});
	const a = audit(worker);
	await worker.start();
	await eventually(async () => (await api.childCounts(parent.job_id)).completed === 5n, 'the other five jobs to complete');
	await worker.stop();
	assert.deepEqual(a.lost, [victim], 'only the cancelled job is lost');
	assert.equal(a.done.size, 5);
	assert.ok([...a.done.values()].every((n) => n === 1), 'each job done once');
	const counts = await api.childCounts(parent.job_id);
	assert.equal(counts.cancelled, 1n);
	assert.equal(counts.processing, 0n);
});

test('batch mode claims with its completes (batchjob_complete_and_claim); a stopping worker does not', async () => {
	const JOBS = 30;
	/* the 11th job's handler waits here while the worker stops */
	const GATED = 11;
	const parent = await api.createParent({ run: 'ride' }, 'tester');
	await api.split(parent.job_id, JOBS, 1);

	const handlersGate = gate();
	const order: bigint[] = [];
	/* its own pool, ended here: a backend's function statistics are sent at the latest when it exits */
	const pool = new pg.Pool({ database: db.database, max: 4, options: '-c track_functions=all' });
	pool.on('error', () => undefined);
	const worker = new Worker<unknown>({
		pool,
		name: 'ride',
		concurrency: 1,
		/* above concurrency: batch mode, up to 2 claims of 2 held */
		batchSize: 2,
		pollIntervalMs: 50,
		shutdownTimeoutMs: 600_000,
		handleSignals: false,
		handler: async (job: BatchJob) => {
			order.push(job.job_id);
			if (order.length === GATED)
				await handlersGate.wait;
		},
	});
	/* every call that completes or claims, and whether the worker was stopping */
	let stopping = false;
	const rides: { done: bigint[]; maxJobs: number; stopping: boolean }[] = [];
	const claims: { stopping: boolean }[] = [];
	const completes: { stopping: boolean }[] = [];
	const claimed = new Set<bigint>();
	const completeAndClaim = worker.api.completeAndClaim.bind(worker.api);
	worker.api.completeAndClaim = async (ids, name, options) => {
		rides.push({ done: ids.map(BigInt), maxJobs: options?.maxJobs ?? 1, stopping });
		const jobs = await completeAndClaim(ids, name, options);
		for (const j of jobs)
			claimed.add(j.job_id);
		return jobs;
	};
	const claim = worker.api.claim.bind(worker.api);
	worker.api.claim = async (name, options) => {
		claims.push({ stopping });
		const jobs = await claim(name, options);
		for (const j of jobs)
			claimed.add(j.job_id);
		return jobs;
	};
	const complete = worker.api.complete.bind(worker.api) as (ids: unknown, claim: unknown) => Promise<unknown>;
	(worker.api as { complete: unknown }).complete = (ids: unknown, ref: unknown) => {
		completes.push({ stopping });
		return complete(ids, ref);
	};
	const a = audit(worker);
	await worker.start();
	await eventually(() => order.length === GATED && a.done.size === GATED - 1, 'the first 10 jobs done, the 11th running');

	/*
	 * Each of the first 10 was completed by a call that also claimed (the
	 * worker never holds more than it may, so the jobs a complete finishes
	 * are always room), none by a plain complete.
	 */
	assert.deepEqual(completes, []);
	assert.ok(rides.length > 0);
	assert.deepEqual(rides.flatMap((r) => r.done).sort(), order.slice(0, GATED - 1).sort());
	assert.ok(rides.every((r) => r.maxJobs >= 1 && r.maxJobs <= 2), 'at most batchSize');

	/* stopping: the running job's complete claims nothing, the jobs claimed ahead go back */
	const stopped = worker.stop();
	stopping = true;
	handlersGate.open();
	await stopped;
	assert.deepEqual(rides.filter((r) => r.stopping), []);
	assert.deepEqual(claims.filter((c) => c.stopping), []);
	assert.deepEqual(completes, [{ stopping: true }]);
	assert.equal(a.done.size, GATED);
	assert.ok(a.done.has(order[GATED - 1]!));
	assert.deepEqual(a.lost, []);
	/* what the server holds: the claimed jobs completed or handed back, no other job touched */
	const rows = await db.sql(`SELECT job_id, status, attempts FROM batch_jobs WHERE parent_job_id = $1`, [parent.job_id]);
	assert.equal(rows.rows.length, JOBS);
	for (const row of rows.rows as { job_id: bigint; status: string; attempts: number }[]) {
		const id = BigInt(row.job_id);
		const want = a.done.has(id) ? ['COMPLETED', 1] : claimed.has(id) ? ['PENDING', 1] : ['PENDING', 0];
		assert.deepEqual([row.status, row.attempts], want, `job ${id}`);
	}
	assert.ok(claimed.size > GATED, 'jobs were claimed ahead and handed back');

	/* the server counted the same calls (the statistics arrive when the backends exit) */
	await pool.end();
	await eventually(async () => {
		const st = await db.sql(`SELECT coalesce(sum(calls), 0) AS n FROM pg_stat_user_functions WHERE funcname = 'batchjob_complete_and_claim'`);
		return Number(st.rows[0].n) === rides.length;
	}, `the server to count ${rides.length} calls of batchjob_complete_and_claim`);
	/* the jobs left are not for the next test's worker */
	await api.cancel(parent.job_id);
	assert.deepEqual(await api.verify(), []);
});

test('batch mode: a second complete-and-claim goes out while one is on its way, and the worker never holds more than twice batchSize', async () => {
	const JOBS = 24;
	const parent = await api.createParent({ run: 'two-rides' }, 'tester');
	await api.split(parent.job_id, JOBS, 1);
	const jobGate = gate();
	const rideGate = gate();
	let started = 0;
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 6 }),
		name: 'two-rides',
		concurrency: 1,
		/* batch mode: claims of 2, at most 4 held */
		batchSize: 2,
		pollIntervalMs: 50,
		handleSignals: false,
		handler: async () => {
			/* the second job waits, so that the first call completes the first job alone */
			if (++started === 2)
				await jobGate.wait;
		},
	});
	const held = async (): Promise<number> => {
		const r = await db.sql(`SELECT count(*) AS n FROM batch_jobs WHERE locked_by = $1 AND status = 'PROCESSING'`, [worker.id]);
		return Number(r.rows[0].n);
	};
	let calls = 0;
	let onTheirWay = 0;
	let most = 0;
	const holding: number[] = [];
	const completeAndClaim = worker.api.completeAndClaim.bind(worker.api);
	worker.api.completeAndClaim = async (ids, name, options) => {
		const first = ++calls === 1;
		most = Math.max(most, ++onTheirWay);
		try {
			/* the first call waits until the gate opens: the others go out meanwhile */
			if (first)
				await rideGate.wait;
			const jobs = await completeAndClaim(ids, name, options);
			holding.push(await held());
			return jobs;
		} finally {
			onTheirWay--;
		}
	};
	const claim = worker.api.claim.bind(worker.api);
	worker.api.claim = async (name, options) => {
		const jobs = await claim(name, options);
		holding.push(await held());
		return jobs;
	};
	const a = audit(worker);
	await worker.start();
	await eventually(() => calls === 1, 'the first job to be completed (held back)');
	jobGate.open();
	/* the first is still held back: whatever went out since went out beside it */
	await eventually(() => calls >= 2, 'a second complete-and-claim while the first is on its way');
	assert.equal(most, 2);
	rideGate.open();
	await eventually(() => a.done.size === JOBS, 'every job to be done');
	await worker.stop();
	assert.equal(most, 2, 'at most two on their way');
	assert.ok(holding.every((n) => n <= 4), `never more than twice batchSize held: ${holding.join(' ')}`);
	assert.ok([...a.done.values()].every((n) => n === 1), 'each job done once');
	assert.deepEqual(a.lost, []);
	assert.equal((await api.childCounts(parent.job_id)).completed, BigInt(JOBS));
	assert.deepEqual(await api.verify(), []);
});

test('batch mode: a complete-and-claim refused, or whose answer is lost, still finishes each job once', async () => {
	const JOBS = 20;
	const parent = await api.createParent({ run: 'ride-fail' }, 'tester');
	await api.split(parent.job_id, JOBS, 1);
	let victim: bigint | undefined;
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 4 }),
		name: 'ride-fail',
		concurrency: 1,
		batchSize: 2,
		pollIntervalMs: 50,
		handleSignals: false,
		handler: async (job: BatchJob) => {
			/* the first job is cancelled after its handler succeeded: the call completing it is refused whole */
			if (victim === undefined) {
				victim = job.job_id;
				await api.cancel(job.job_id);
			}
		},
	});
	let refused = 0;
	let dropped: { done: bigint[]; claimed: bigint[] } | undefined;
	const completeAndClaim = worker.api.completeAndClaim.bind(worker.api);
	worker.api.completeAndClaim = async (ids, name, options) => {
		let jobs: BatchJob[];
		try {
			jobs = await completeAndClaim(ids, name, options);
		} catch (err) {
			if (err instanceof ConflictError)
				refused++;
			throw err;
		}
		if (refused > 0 && dropped === undefined && jobs.length > 0) {
			/* it committed; its answer is what goes missing */
			dropped = { done: ids.map(BigInt), claimed: jobs.map((j) => j.job_id) };
			throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
		}
		return jobs;
	};
	const a = audit(worker);
	await worker.start();
	await eventually(async () => (await api.childCounts(parent.job_id)).completed === BigInt(JOBS - 1), 'the other jobs to complete');
	await worker.stop();

	assert.equal(refused, 1, 'the call with the cancelled job was refused');
	assert.deepEqual(a.lost, [victim], 'only the cancelled job is lost');
	assert.ok(dropped !== undefined, 'an answer was dropped');
	/* the jobs it completed are reported done (read back), the ones it claimed were adopted and done */
	for (const id of [...dropped.done, ...dropped.claimed])
		assert.equal(a.done.get(id), 1, `job ${id} done once`);
	assert.equal(a.done.size, JOBS - 1);
	assert.ok([...a.done.values()].every((n) => n === 1), 'each job done once');
	assert.ok(a.errors.some((e) => e instanceof Error && e.message === 'Connection terminated unexpectedly'));
	const r = await db.sql(`SELECT max(attempts) AS m, count(*) FILTER (WHERE status = 'PROCESSING') AS p FROM batch_jobs WHERE parent_job_id = $1`, [parent.job_id]);
	assert.deepEqual(r.rows[0], { m: 1, p: '0' });
	assert.deepEqual(await api.verify(), []);
});
