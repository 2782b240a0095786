/*
 * test/repository.test.ts - the drop-in BatchJobRepository: the seed's seven
 * methods and shapes, backed by the extension.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { BatchJobRepository, BatchJobs, InvalidArgumentError } from 'batchjob';

import { testDb, type TestDb } from './helpers.js';

let db: TestDb;

before(async () => {
	db = await testDb('repo');
});

after(async () => {
	await db.close();
});

test('the seven methods, numbers mode', async () => {
	const repo = new BatchJobRepository<{ file: string }, 'number'>(db.pool, { int8: 'number' });
	const parent = await repo.createParentJob({ criteria: { file: 'leads.csv' }, created_by: 'svc', priority: 2 });
	assert.equal(typeof parent.job_id, 'number');
	assert.equal(parent.is_parent, true);
	assert.equal(parent.status, 'PENDING');
	const c1 = await repo.createChildJob(parent.job_id, { criteria: { file: 'leads.csv' } }, 1, 0, 100);
	const c2 = await repo.createChildJob(parent.job_id, {}, 2, 100, 50);
	assert.equal(c1.total_records, 100);
	assert.equal(c2.batch_offset, 100);
	assert.equal(c2.created_by, 'svc');
	const kids = await repo.getChildJobs(parent.job_id);
	assert.deepEqual(kids.map((k) => k.job_id), [c1.job_id, c2.job_id]);
	assert.deepEqual(await repo.getChildJobStatusCounts(parent.job_id), {
		pending: 2, processing: 0, completed: 0, failed: 0, cancelled: 0, total: 2,
	});
	const next = await repo.getNextPendingJob();
	assert.equal(next?.job_id, c1.job_id);

	/* a child fails for good while its sibling runs: the parent stays PROCESSING */
	const api = new BatchJobs(db.pool);
	const [a, b] = await api.claim('w', { maxJobs: 2 });
	await api.fail(a!.job_id, 'bad file', { retry: false, worker: 'w', attempt: 1 });
	await api.fold(parent.job_id);
	const mid = await repo.updateParentJobStatus(parent.job_id);
	assert.equal(mid?.status, 'PROCESSING');
	await api.reportProgress(b!.job_id, { processed: 50, succeeded: 50, failed: 0 }, { worker: 'w', attempt: 1 });
	await api.complete(b!.job_id, { worker: 'w', attempt: 1 });
	await api.fold(parent.job_id);
	const prog = await repo.updateParentJobProgress(parent.job_id);
	assert.equal(prog?.processed_records, 50);
	assert.equal(prog?.total_records, 150);
	const fin = await repo.updateParentJobStatus(parent.job_id);
	assert.equal(fin?.status, 'COMPLETED');
	assert.equal(fin?.error_details, '1 out of 2 batch jobs failed');
	assert.equal(await repo.getNextPendingJob(), null);

	/* as before: null for a parent without children */
	const lonely = await repo.createParentJob({ criteria: { file: 'x' }, created_by: 'svc' });
	assert.equal(await repo.updateParentJobProgress(lonely.job_id), null);
	assert.equal(await repo.updateParentJobStatus(lonely.job_id), null);
});

test('bigint mode by default; numbers past 2^53 are refused, not rounded', async () => {
	await db.sql(`SELECT setval(pg_get_serial_sequence('batch_jobs', 'job_id'), $1)`, [(2n ** 53n).toString()]);
	const exact = new BatchJobRepository(db.pool);
	const p = await exact.createParentJob({ criteria: {}, created_by: 'svc' });
	assert.equal(p.job_id, 2n ** 53n + 1n);
	const asNumbers = new BatchJobRepository(db.pool, { int8: 'number' });
	assert.deepEqual(await asNumbers.getChildJobs(p.job_id), []);
	await exact.createChildJob(p.job_id, {}, 1, 0, 1);
	await assert.rejects(asNumbers.getChildJobs(p.job_id), RangeError);
	await assert.rejects(asNumbers.getNextPendingJob(), RangeError);
});

test('what the extension decides is refused, not ignored', async () => {
	const repo = new BatchJobRepository(db.pool);
	await assert.rejects(repo.createParentJob({ criteria: {}, created_by: 'svc', status: 'COMPLETED' }), InvalidArgumentError);
	await assert.rejects(repo.createParentJob({ criteria: {}, created_by: 'svc', processed_records: 5n }), InvalidArgumentError);
});
