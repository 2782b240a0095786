/*
 * test/sigterm.test.ts - SIGTERM to a process running a Worker in the middle
 * of a run: it stops claiming, finishes or hands back what it holds, and
 * exits; another worker then finishes the rest.  No job is lost, none is
 * completed twice.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { BatchJobs, Worker } from 'batchjob';

import { eventually, testDb, type TestDb } from './helpers.js';

let db: TestDb;
let api: BatchJobs;

before(async () => {
	db = await testDb('sigterm');
	api = new BatchJobs(db.pool);
});

after(async () => {
	await db.close();
});

interface Line {
	event: string;
	id?: string;
	attempt?: number;
	released?: boolean;
	long?: boolean;
	status?: string;
}

test('SIGTERM mid-run: nothing lost, nothing doubled', async () => {
	const CHILDREN = 300;
	const parent = await api.createParent({ run: 'sigterm' }, 'tester');
	await api.split(parent.job_id, CHILDREN, 1);

	const script = fileURLToPath(new URL('./fixtures/sigterm-worker.js', import.meta.url));
	/* not NODE_TEST_CONTEXT: the child is a plain program, not a test file */
	const { NODE_TEST_CONTEXT: _, ...env } = process.env;
	const child = spawn(process.execPath, [script], {
		env: { ...env, BJ_TEST_DATABASE: db.database },
		stdio: ['ignore', 'pipe', 'inherit'],
	});
	const lines: Line[] = [];
	createInterface({ input: child.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Line));
	const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

	try {
		await eventually(
			() => lines.filter((l) => l.event === 'done').length >= 50 && lines.some((l) => l.event === 'start' && l.long === true),
			'the child to complete 50 jobs and start a long one',
		);
		child.kill('SIGTERM');
		assert.equal(await exited, 0, 'the child exits by itself once stopped');
	} finally {
		if (child.exitCode === null)
			child.kill('SIGKILL');
	}
	assert.equal(lines.at(-1)?.event, 'stopped');

	const doneByChild = lines.filter((l) => l.event === 'done').map((l) => BigInt(l.id!));
	const released = lines.filter((l) => l.event === 'failed' && l.released === true).map((l) => BigInt(l.id!));
	assert.equal(new Set(doneByChild).size, doneByChild.length, 'no job completed twice by the child');
	assert.ok(released.length > 0, 'jobs in flight at the end were handed back');
	assert.deepEqual(lines.filter((l) => l.event === 'lost'), []);

	/* nothing is left PROCESSING: what it held was completed or handed back */
	const held = await db.sql(`SELECT count(*) AS n FROM batch_jobs WHERE parent_job_id = $1 AND status = 'PROCESSING'`, [parent.job_id]);
	assert.equal(held.rows[0].n, '0');
	for (const id of released)
		assert.equal((await api.get(id))?.status, 'PENDING', `released job ${id} is PENDING again`);

	/* another worker finishes the rest, long batches included */
	const doneHere: bigint[] = [];
	const worker = new Worker<unknown>({
		pool: db.newPool({ max: 6 }),
		concurrency: 4,
		pollIntervalMs: 100,
		handleSignals: false,
		handler: async () => undefined,
	});
	worker.on('job:done', (job) => doneHere.push(job.job_id));
	await worker.start();
	await eventually(async () => (await api.childCounts(parent.job_id)).completed === BigInt(CHILDREN), 'every child completed');
	await worker.stop();

	const all = [...doneByChild, ...doneHere];
	assert.equal(all.length, CHILDREN, 'each child completed exactly once over both workers');
	assert.equal(new Set(all).size, CHILDREN);
	for (const id of released)
		assert.ok(doneHere.includes(id), `released job ${id} was completed by the second worker`);
	await api.fold(parent.job_id);
	assert.equal((await api.get(parent.job_id))?.status, 'COMPLETED');
	assert.deepEqual(await api.verify(), []);
});
