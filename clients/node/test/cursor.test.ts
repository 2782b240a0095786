/*
 * test/cursor.test.ts - children() streams 100,000 children through a
 * server-side cursor with flat client memory, and gives its connection back
 * when the loop ends, breaks or throws.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { BatchJobs } from 'batchjob';

import { testDb, type TestDb } from './helpers.js';

let db: TestDb;
let api: BatchJobs;
let parentId: bigint;

const N = 100_000;

const gc = (globalThis as { gc?: () => void }).gc;

function heap(): number {
	gc?.();
	gc?.();
	return process.memoryUsage().heapUsed;
}

before(async () => {
	db = await testDb('cursor');
	api = new BatchJobs(db.newPool({ max: 2 }));
	const p = await api.createParent({ export: 'big' }, 'u');
	parentId = p.job_id;
	assert.equal(await api.split(parentId, N, 1), N);
});

after(async () => {
	await db.close();
});

test('100,000 children through the cursor, heap flat', { skip: gc === undefined ? 'run with --expose-gc' : false }, async (t) => {
	const base = heap();
	let peak = 0;
	let n = 0;
	let last = 0;
	let sum = 0n;
	for await (const c of api.children(parentId, { fetchSize: 500 })) {
		n++;
		assert.equal(c.batch_number, last + 1, 'in batch_number order');
		last = c.batch_number ?? -1;
		sum += c.batch_offset ?? 0n;
		if (n % 10_000 === 0)
			peak = Math.max(peak, heap() - base);
	}
	assert.equal(n, N);
	assert.equal(sum, BigInt(N) * BigInt(N - 1) / 2n);
	/*
	 * 100,000 rows of ~30 columns held at once take well over 100 MB of
	 * heap; a stream holds one fetch (500 rows).  The bound is generous.
	 */
	t.diagnostic(`heap growth while streaming: ${(peak / 1048576).toFixed(1)} MB`);
	assert.ok(peak < 32 * 1024 * 1024, `heap grew by ${(peak / 1048576).toFixed(1)} MB while streaming`);
});

test('break and throw give the connection back (pool of 2)', async () => {
	for (let i = 0; i < 5; i++) {
		for await (const c of api.children(parentId)) {
			assert.equal(c.batch_number, 1);
			break;
		}
	}
	await assert.rejects(async () => {
		for await (const _ of api.children(parentId))
			throw new Error('consumer failed');
	}, /consumer failed/);
	/* every connection is back and usable: no transaction left open */
	assert.equal((await api.childCounts(parentId)).total, BigInt(N));
	assert.equal(api.pool.waitingCount, 0);
	const r = await api.pool.query<{ n: string }>(
		`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
	);
	assert.equal(r.rows[0]?.n, '0');
});
