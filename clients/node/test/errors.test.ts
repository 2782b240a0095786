/*
 * test/errors.test.ts - each error class from the server error that maps to
 * it, with the server's message, detail, hint and code kept.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
	BatchJobError,
	BatchJobs,
	ConflictError,
	InvalidArgumentError,
	JobNotFoundError,
	NotAParentError,
	ParentNotFoundError,
	PermissionError,
	toBatchJobError,
} from 'batchjob';

import { testDb, type TestDb } from './helpers.js';

let db: TestDb;
let api: BatchJobs;

before(async () => {
	db = await testDb('errors');
	api = new BatchJobs(db.pool);
});

after(async () => {
	await db.close();
});

/** Asserts that p rejects with an instance of cls carrying code (and a message matching re). */
async function rejectsWith(
	p: Promise<unknown>,
	cls: abstract new (...args: never[]) => BatchJobError,
	code: string,
	re?: RegExp,
): Promise<BatchJobError> {
	try {
		await p;
	} catch (err) {
		assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
		assert.ok(err instanceof BatchJobError);
		assert.equal(err.code, code);
		assert.equal(err.name, (err.constructor as { name: string }).name);
		if (re !== undefined)
			assert.match(err.message, re);
		assert.ok(err.cause instanceof Error, 'the original error is the cause');
		return err;
	}
	assert.fail(`expected ${cls.name} (${code})`);
}

test('JobNotFoundError: P0002', async () => {
	const e = await rejectsWith(api.complete(424242), JobNotFoundError, 'P0002', /job 424242 does not exist/);
	assert.equal(e.jobId, 424242n);
	await rejectsWith(api.retry(424242), JobNotFoundError, 'P0002');
	await rejectsWith(api.cancel(424242), JobNotFoundError, 'P0002');
});

test('NotAParentError: 22023 "is not a parent job"; ParentNotFoundError: 23503', async () => {
	const p = await api.createParent({}, 'u');
	await api.split(p.job_id, 2, 1);
	const [child] = await api.claim('w');
	const e = await rejectsWith(api.createChild(child!.job_id, 1, 0, 1), NotAParentError, '22023', /is not a parent job/);
	assert.equal(e.jobId, child!.job_id);
	await rejectsWith(api.split(child!.job_id, 10, 1), NotAParentError, '22023');
	await rejectsWith(api.childCounts(child!.job_id), NotAParentError, '22023');
	const m = await rejectsWith(api.split(987654, 10, 1), ParentNotFoundError, '23503', /parent job 987654 does not exist/);
	assert.ok(m instanceof NotAParentError, 'a missing parent is also a NotAParentError');
	await rejectsWith(api.createParent({}, 'u', { parentJobId: 987654 }), ParentNotFoundError, '23503');
	await rejectsWith(api.children(987654).next(), ParentNotFoundError, '23503');
});

test('InvalidArgumentError: 22023, 22004, 22003, 23514', async () => {
	const p = await api.createParent({}, 'u');
	await rejectsWith(api.split(p.job_id, 10, 0), InvalidArgumentError, '22023', /batch_size must be positive/);
	await rejectsWith(api.createParent({}, 'u', { totalRecords: -1 }), InvalidArgumentError, '22023');
	await rejectsWith(api.claim('w', { maxJobs: 0 }), InvalidArgumentError, '22023');
	await rejectsWith(api.createParent(null, 'u'), InvalidArgumentError, '22004', /criteria must not be null/);
	/* a split past its bound (README, Bounds), and an id past bigint */
	await rejectsWith(api.split(p.job_id, 3_000_000_000n, 1), InvalidArgumentError, '22023', /batches/);
	await rejectsWith(api.get('9223372036854775808'), InvalidArgumentError, '22003');
	/* a parent given to a worker function is an invalid argument, not "not a parent" */
	const e = await rejectsWith(api.complete(p.job_id), InvalidArgumentError, '22023', /is a parent job/);
	assert.ok(!(e instanceof NotAParentError));
	await api.split(p.job_id, 5, 5);
	const [j] = await api.claim('w');
	await rejectsWith(
		api.reportProgress(j!.job_id, { processed: 6, succeeded: 6, failed: 0 }, { worker: 'w', attempt: 1 }),
		InvalidArgumentError,
		'23514',
	);
	await rejectsWith(
		api.reportProgress(j!.job_id, { processed: 2, succeeded: 2, failed: 1 }, { worker: 'w', attempt: 1 }),
		InvalidArgumentError,
		'22023',
		/exceeds processed/,
	);
});

test('ConflictError: 55000 with detail, 23505', async () => {
	const p = await api.createParent({}, 'u');
	await api.split(p.job_id, 1, 1);
	const [j] = await api.claim('worker-A');
	const e = await rejectsWith(
		api.complete(j!.job_id, { worker: 'worker-B', attempt: 1 }),
		ConflictError,
		'55000',
		/is not held by worker "worker-B"/,
	);
	assert.equal(e.detail, 'It is held by worker "worker-A" in attempt 1.');
	await api.complete(j!.job_id, { worker: 'worker-A', attempt: 1 });
	await rejectsWith(api.complete(j!.job_id, { worker: 'worker-A', attempt: 1 }), ConflictError, '55000', /is COMPLETED, not PROCESSING/);
	await rejectsWith(api.retry(j!.job_id), ConflictError, '55000');
	await rejectsWith(api.split(p.job_id, 1, 1), ConflictError, '55000', /already has children/);
	await rejectsWith(api.createChild(p.job_id, 1, 0, 1), ConflictError, '23505', /already has a batch 1/);
});

test('PermissionError: 42501; a worker that names no worker gets a hint', async () => {
	await db.role('bj_nobody', 'LOGIN');
	await db.role('bj_worker', 'LOGIN');
	await api.grant('bj_worker', 'worker');
	const nobody = new BatchJobs(db.newPool({ user: 'bj_nobody', max: 1 }));
	await rejectsWith(nobody.createParent({}, 'bj_nobody'), PermissionError, '42501', /permission denied/);
	const worker = new BatchJobs(db.newPool({ user: 'bj_worker', max: 1 }));
	await rejectsWith(worker.createParent({}, 'bj_worker'), PermissionError, '42501');
	const p = await api.createParent({}, 'u');
	await api.split(p.job_id, 1, 1);
	const [j] = await worker.claim('w-9');
	const e = await rejectsWith(worker.complete(j!.job_id), ConflictError, '55000', /no worker named to complete job/);
	assert.ok(e.hint !== undefined && /attempt/.test(e.hint), `a hint: ${e.hint}`);
	assert.equal((await worker.complete(j!.job_id, { worker: 'w-9', attempt: j!.attempts })).status, 'COMPLETED');
});

test('errors that are not the server\'s pass through', async () => {
	const plain = new Error('boom');
	assert.equal(toBatchJobError(plain), plain);
	/* a server error outside batchjob's table is a BatchJobError with its code */
	await assert.rejects(
		db.pool.query('SELECT 1/0').catch((err: unknown) => {
			throw toBatchJobError(err);
		}),
		(err: unknown) => err instanceof BatchJobError && err.code === '22012' && !(err instanceof InvalidArgumentError),
	);
});
