/*
 * test/wait.test.ts - waitForParent: racing a parent that finishes before,
 * during and after the LISTEN; with and without the notification's payload
 * (tenant isolation); timeout, abort and a missing parent.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { BatchJobs, JobNotFoundError, WaitTimeoutError, type BatchJob } from 'batchjob';

import { testDb, type TestDb } from './helpers.js';

let db: TestDb;
let api: BatchJobs;
let iso: TestDb;

before(async () => {
	db = await testDb('wait');
	api = new BatchJobs(db.pool);
	iso = await testDb('wait_iso', { 'batchjob.tenant_isolation': 'on' });
});

after(async () => {
	await db.close();
	await iso.close();
});

/** A parent with one claimed child; finish() completes (or fails) the child. */
async function oneChild(a: BatchJobs): Promise<{ parent: BatchJob; finish: (how?: 'complete' | 'fail') => Promise<void> }> {
	const parent = await a.createParent({}, 'tester');
	await a.split(parent.job_id, 1, 1);
	const [child] = await a.claim('w');
	assert.ok(child !== undefined);
	return {
		parent,
		finish: async (how = 'complete') => {
			if (how === 'complete')
				await a.complete(child.job_id, { worker: 'w', attempt: child.attempts });
			else
				await a.fail(child.job_id, 'no', { retry: false, worker: 'w', attempt: child.attempts });
		},
	};
}

test('races with a finishing parent: before, together with and after the wait starts', async () => {
	for (let i = 0; i < 30; i++) {
		const { parent, finish } = await oneChild(api);
		let waiting: Promise<BatchJob>;
		switch (i % 3) {
			case 0:
				await finish();
				waiting = api.waitForParent(parent.job_id, { timeoutMs: 30_000 });
				break;
			case 1:
				waiting = api.waitForParent(parent.job_id, { timeoutMs: 30_000 });
				await finish();
				break;
			default:
				waiting = api.waitForParent(parent.job_id, { timeoutMs: 30_000 });
				await new Promise((resolve) => setImmediate(resolve));
				await new Promise((resolve) => setTimeout(resolve, i % 7));
				await finish();
		}
		const done = await waiting;
		assert.equal(done.job_id, parent.job_id);
		assert.equal(done.status, 'COMPLETED');
		assert.ok(done.completed_at instanceof Date);
	}
	/*
	 * every listening connection goes away with its wait; a wait hands its
	 * connection back after it has resolved, so look until it has (bounded)
	 */
	let listening = '';
	for (let tries = 0; tries < 200; tries++) {
		const r = await db.sql(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`);
		listening = r.rows[0].n;
		if (listening === '0') break;
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
	assert.equal(listening, '0');
});

test('a parent that ends FAILED or CANCELLED', async () => {
	const f = await oneChild(api);
	const w1 = api.waitForParent(f.parent.job_id, { timeoutMs: 30_000 });
	await f.finish('fail');
	assert.equal((await w1).status, 'FAILED');
	const c = await oneChild(api);
	const w2 = api.waitForParent(c.parent.job_id, { timeoutMs: 30_000 });
	await api.cancel(c.parent.job_id);
	assert.equal((await w2).status, 'CANCELLED');
});

test('notifications of other parents do not end the wait', async () => {
	const mine = await oneChild(api);
	const other = await oneChild(api);
	const w = api.waitForParent(mine.parent.job_id, { timeoutMs: 30_000 });
	let settled = false;
	void w.then(() => {
		settled = true;
	}, () => undefined);
	await other.finish();
	await api.waitForParent(other.parent.job_id, { timeoutMs: 30_000 });
	assert.equal(settled, false);
	await mine.finish();
	assert.equal((await w).job_id, mine.parent.job_id);
});

test('tenant isolation: the notification has no payload, the wait reads again', async () => {
	const isoApi = new BatchJobs(iso.pool);
	/* the payload is empty under isolation */
	const listener = await iso.pool.connect();
	const payloads: string[] = [];
	listener.on('notification', (m) => payloads.push(m.payload ?? ''));
	await listener.query('LISTEN batchjob_parent_done');
	for (let i = 0; i < 5; i++) {
		const { parent, finish } = await oneChild(isoApi);
		const w = isoApi.waitForParent(parent.job_id, { timeoutMs: 30_000 });
		await finish();
		assert.equal((await w).status, 'COMPLETED');
	}
	await listener.query('UNLISTEN *');
	listener.release();
	assert.ok(payloads.length >= 1);
	assert.ok(payloads.every((p) => p === ''), `payloads: ${JSON.stringify(payloads)}`);
});

test('timeout, abort, a missing parent', async () => {
	const { parent, finish } = await oneChild(api);
	await assert.rejects(api.waitForParent(parent.job_id, { timeoutMs: 100 }), WaitTimeoutError);
	const ac = new AbortController();
	const w = api.waitForParent(parent.job_id, { signal: ac.signal });
	ac.abort(new Error('caller gave up'));
	await assert.rejects(w, /caller gave up/);
	await assert.rejects(api.waitForParent(parent.job_id, { signal: AbortSignal.abort() }));
	await assert.rejects(api.waitForParent(999_999, { timeoutMs: 30_000 }), JobNotFoundError);
	await finish();
	assert.equal((await api.waitForParent(parent.job_id)).status, 'COMPLETED');
	assert.equal(api.pool.waitingCount, 0);
});
