/*
 * test/api.test.ts - every method of BatchJobs against a real server, with
 * ids and counters past 2^53.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import pg from 'pg';

import { BatchJobs, ConflictError, typeParsers, type BatchJob } from 'batchjob';

import { eventually, testDb, type TestDb } from './helpers.js';

interface Export {
	export: string;
	format?: string;
}

let db: TestDb;
let api: BatchJobs<Export>;

const BIG = 2n ** 53n + 1n; /* 9007199254740993: not a double */

before(async () => {
	db = await testDb('api');
	api = new BatchJobs<Export>(db.pool);
	/* every id from here on is past 2^53 */
	await db.sql(`SELECT setval(pg_get_serial_sequence('batch_jobs', 'job_id'), $1)`, [BIG.toString()]);
});

after(async () => {
	await db.close();
});

test('createParent: a PENDING parent, ids and totals past 2^53 exact', async () => {
	const p = await api.createParent({ export: 'customers', format: 'csv' }, 'alice', {
		priority: 5,
		/* the most a job may be given (README, Bounds) */
		totalRecords: 2n ** 48n,
		onChildFailure: 'fail_fast',
	});
	assert.equal(p.total_records, 2n ** 48n);
	/* counters past 2^53 come only from sums; an admin's UPDATE makes one here */
	await db.sql(`UPDATE batch_jobs SET total_records = $2 WHERE job_id = $1`, [
		p.job_id.toString(),
		(2n ** 62n + 7n).toString(),
	]);
	assert.equal(typeof p.job_id, 'bigint');
	assert.equal(p.job_id, BIG + 1n);
	assert.equal(p.status, 'PENDING');
	assert.equal(p.is_parent, true);
	assert.equal(p.priority, 5);
	assert.equal(p.on_child_failure, 'fail_fast');
	assert.deepEqual(p.criteria, { export: 'customers', format: 'csv' });
	assert.ok(p.created_at instanceof Date);
	assert.equal(p.completed_at, null);
	const again = await api.get(p.job_id);
	assert.equal(again?.total_records, 2n ** 62n + 7n);
	/* a string and a bigint name the same job */
	assert.equal((await api.get(p.job_id.toString()))?.job_id, p.job_id);
	/* a number past 2^53 may already be rounded: refused */
	await assert.rejects(api.get(Number(BIG)), RangeError);
});

test('createParent nested under another parent; createChild', async () => {
	const root = await api.createParent({ export: 'root' }, 'alice');
	const sub = await api.createParent({ export: 'sub' }, 'alice', { parentJobId: root.job_id });
	assert.equal(sub.parent_job_id, root.job_id);
	const c = await api.createChild(sub.job_id, 1, 2n ** 60n, 500, { priority: 9 });
	assert.equal(c.parent_job_id, sub.job_id);
	assert.equal(c.batch_offset, 2n ** 60n);
	assert.equal(c.batch_size, 500);
	assert.equal(c.total_records, 500n);
	assert.equal(c.priority, 9);
	assert.deepEqual(c.criteria, { export: 'sub' }, 'criteria default to the parent');
	assert.equal(c.created_by, 'alice');
	const c2 = await api.createChild(sub.job_id, 2, 500, 10, { criteria: { export: 'own' } });
	assert.deepEqual(c2.criteria, { export: 'own' });
	assert.deepEqual(await api.childCounts(sub.job_id), {
		pending: 2n, processing: 0n, completed: 0n, failed: 0n, cancelled: 0n, total: 2n,
	});
	await api.cancel(root.job_id);
});

test('split, children, childCounts, progress', async () => {
	const p = await api.createParent({ export: 'orders' }, 'bob');
	assert.equal(await api.split(p.job_id, 1050, 100), 11);
	const kids: BatchJob<Export>[] = [];
	for await (const c of api.children(p.job_id, { fetchSize: 3 }))
		kids.push(c);
	assert.deepEqual(kids.map((k) => k.batch_number), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
	assert.deepEqual(kids.map((k) => k.batch_offset), [0n, 100n, 200n, 300n, 400n, 500n, 600n, 700n, 800n, 900n, 1000n]);
	assert.equal(kids[10]?.batch_size, 50);
	assert.ok(kids.every((k) => k.job_id > BIG));
	const counts = await api.childCounts(p.job_id);
	assert.equal(counts.pending, 11n);
	assert.equal(counts.total, 11n);
	const prog = await api.progress(p.job_id);
	assert.ok(prog !== null);
	assert.equal(prog.children, 11n);
	assert.equal(prog.total_records, 1050n);
	assert.equal(prog.processed_records, 0n);
	assert.equal(prog.percent_done, 0);
	assert.equal(await api.progress(kids[0]!.job_id), null, 'a child has no progress row');
	await api.cancel(p.job_id);
});

test('nextPending, claim, heartbeat, reportProgress, complete', async () => {
	const p = await api.createParent({ export: 'x' }, 'carol', { priority: 100 });
	await api.split(p.job_id, 30, 10);
	const next = await api.nextPending();
	assert.ok(next !== null);
	assert.equal(next.parent_job_id, p.job_id);
	assert.equal(next.batch_number, 1);
	const claimed = await api.claim('w-1', { maxJobs: 2, lease: 60_000 });
	assert.equal(claimed.length, 2);
	const [a, b] = claimed as [BatchJob<Export>, BatchJob<Export>];
	assert.equal(a.job_id, next.job_id);
	assert.equal(a.status, 'PROCESSING');
	assert.equal(a.locked_by, 'w-1');
	assert.equal(a.attempts, 1);
	assert.ok(a.locked_until instanceof Date);
	assert.equal(await api.heartbeat(a.job_id, 'w-1', { lease: '10 minutes', attempt: a.attempts }), true);
	assert.equal(await api.heartbeat(a.job_id, 'w-1', { attempt: a.attempts + 1 }), false, 'another attempt');
	assert.equal(await api.heartbeat(a.job_id, 'w-2'), false, 'another worker');
	const r = await api.reportProgress(a.job_id, { processed: 10, succeeded: 9, failed: 1 }, { worker: 'w-1', attempt: 1 });
	assert.equal(r.processed_records, 10n);
	assert.equal(r.error_count, 1n);
	const done = await api.complete(a.job_id, { worker: 'w-1', attempt: 1 });
	assert.equal(done.status, 'COMPLETED');
	assert.ok(done.completed_at instanceof Date);
	/* the array form, with a worker */
	assert.equal(await api.complete([b.job_id, b.job_id], { worker: 'w-1' }), 1n);
	/* an admin (the superuser here) may finish without naming the worker */
	const [c] = await api.claim('w-3');
	assert.equal((await api.complete(c!.job_id)).status, 'COMPLETED');
	const pr = await api.progress(p.job_id);
	assert.equal(pr?.completed, 3n);
	assert.equal(pr?.processed_records, 10n);
	assert.equal((await api.childCounts(p.job_id)).completed, 3n);
	assert.equal(await api.nextPending(), null);
});

test('completeAndClaim: one call completes a batch and claims the next', async () => {
	const p = await api.createParent({ export: 'cc' }, 'cora', { priority: 150 });
	await api.split(p.job_id, 5, 1);
	const first = await api.completeAndClaim([], 'w-cc', { maxJobs: 2, lease: 60_000 });
	assert.equal(first.length, 2, 'nothing to complete: claims only');
	assert.ok(first.every((j) => j.status === 'PROCESSING' && j.locked_by === 'w-cc'));
	const ids = first.map((j) => j.job_id);
	const next = await api.completeAndClaim(ids, 'w-cc', { maxJobs: 2 });
	assert.equal(next.length, 2);
	assert.ok(next.every((j) => !ids.includes(j.job_id)), 'the jobs just completed are not claimed again');
	for (const id of ids)
		assert.equal((await api.get(id))?.status, 'COMPLETED');
	/* all or nothing: a job another worker holds completes none and claims none */
	await assert.rejects(
		api.completeAndClaim([next[0]!.job_id], 'w-other', { maxJobs: 1 }),
		(err: unknown) => err instanceof ConflictError,
	);
	assert.equal((await api.childCounts(p.job_id)).pending, 1n);
	const last = await api.completeAndClaim(next.map((j) => j.job_id), 'w-cc', { maxJobs: 5 });
	assert.equal(last.length, 1);
	assert.deepEqual(await api.completeAndClaim([last[0]!.job_id], 'w-cc', { maxJobs: 5 }), []);
	assert.equal((await api.childCounts(p.job_id)).completed, 5n);
});

test('fail (single and array), retry, cancel', async () => {
	const p = await api.createParent({ export: 'f' }, 'dave', { priority: 200 });
	await api.split(p.job_id, 4, 1);
	const jobs = await api.claim('w-f', { maxJobs: 4 });
	assert.equal(jobs.length, 4);
	const [j1, j2, j3, j4] = jobs as [BatchJob<Export>, BatchJob<Export>, BatchJob<Export>, BatchJob<Export>];
	const back = await api.fail(j1.job_id, 'flaky', { worker: 'w-f', attempt: 1 });
	assert.equal(back.status, 'PENDING', 'retry is the default');
	assert.equal(back.error_details, 'flaky');
	assert.ok(back.run_at.getTime() > back.updated_at.getTime(), 'backoff pushes run_at out');
	const dead = await api.fail(j2.job_id, 'broken', { retry: false, worker: 'w-f', attempt: 1 });
	assert.equal(dead.status, 'FAILED');
	assert.equal(await api.fail([j3.job_id, j4.job_id], 'batch', { retry: false, worker: 'w-f' }), 2n);
	const retried = await api.retry(j2.job_id);
	assert.equal(retried.status, 'PENDING');
	assert.equal(retried.attempts, 0);
	/* retry on a parent: every FAILED job below it */
	assert.equal((await api.retry(p.job_id)).is_parent, true);
	assert.equal((await api.childCounts(p.job_id)).failed, 0n);
	assert.equal(await api.cancel(p.job_id), 4n);
	assert.equal(await api.cancel(p.job_id), 0n, 'nothing left to cancel');
	const parent = await eventually(async () => {
		const row = await api.get(p.job_id);
		return row?.status === 'CANCELLED' ? row : undefined;
	}, 'the parent to be CANCELLED');
	assert.ok(parent.completed_at instanceof Date);
});

test('reap takes back an expired lease', async () => {
	const p = await api.createParent({ export: 'r' }, 'erin', { priority: 300 });
	await api.split(p.job_id, 1, 1);
	const [j] = await api.claim('w-dead', { lease: 1 });
	assert.ok(j !== undefined);
	/* the lease is a millisecond: poll until the reaper takes it */
	await eventually(async () => (await api.reap()) >= 1n, 'reap to take the job back');
	const row = await api.get(j.job_id);
	assert.equal(row?.status, 'PENDING');
	assert.equal(row?.locked_by, null);
	await api.cancel(p.job_id);
});

test('fold, refreshParent, verify', async () => {
	const p = await api.createParent({ export: 'v' }, 'fred');
	await api.split(p.job_id, 20, 5);
	const jobs = await api.claim('w-v', { maxJobs: 4 });
	for (const j of jobs) {
		await api.reportProgress(j.job_id, { processed: 5, succeeded: 5, failed: 0 }, { worker: 'w-v', attempt: j.attempts });
		await api.complete(j.job_id, { worker: 'w-v', attempt: j.attempts });
	}
	assert.equal(typeof (await api.fold(p.job_id)), 'bigint');
	assert.equal(typeof (await api.fold()), 'bigint');
	const stored = await api.get(p.job_id);
	assert.equal(stored?.status, 'COMPLETED');
	assert.equal(stored?.processed_records, 20n);
	const refreshed = await api.refreshParent(p.job_id);
	assert.equal(refreshed?.processed_records, 20n);
	assert.equal(refreshed?.child_completed, 4n);
	const lonely = await api.createParent({ export: 'none' }, 'fred');
	assert.equal(await api.refreshParent(lonely.job_id), null, 'a parent without children');
	assert.deepEqual(await api.verify(), []);
	/* break an invariant by hand: verify reports it */
	const c = await db.pool.connect();
	try {
		/* triggers off, so the stored counter no longer matches the children */
		await c.query('SET session_replication_role = replica');
		await c.query('UPDATE batch_jobs SET child_completed = 7 WHERE job_id = $1', [p.job_id]);
		await c.query('RESET session_replication_role');
	} finally {
		c.release();
	}
	const problems = await api.verify();
	assert.ok(problems.length >= 1);
	assert.equal(typeof problems[0]?.problem, 'string');
	await api.refreshParent(p.job_id);
	assert.deepEqual(await api.verify(), []);
});

test('grant and revoke', async () => {
	await db.role('bj Node Worker');
	const can = async (): Promise<boolean> =>
		(await db.sql(
			`SELECT has_function_privilege('bj Node Worker', 'batchjob_claim(text, integer, interval)', 'EXECUTE') AS ok`,
		)).rows[0].ok as boolean;
	assert.equal(await can(), false);
	await api.grant('bj Node Worker', 'worker', ['alice']);
	assert.equal(await can(), true);
	const w = await db.sql(`SELECT tenants FROM batch_job_workers WHERE worker = '"bj Node Worker"'::regrole`);
	assert.deepEqual(w.rows[0].tenants, ['alice']);
	await api.revoke('bj Node Worker');
	assert.equal(await can(), false);
});

test('the client parses int8 for its own queries only', async () => {
	const r = await db.pool.query('SELECT 1::int8 AS n');
	assert.equal(r.rows[0].n, '1', "the pool's other queries keep pg's default (a string)");
});

test('timestamptz: the same Date as pg parses, in any time zone and form', async () => {
	const parseOurs = typeParsers.getTypeParser(1184, 'text') as (v: string) => unknown;
	const parsePg = pg.types.getTypeParser(1184, 'text') as (v: string) => unknown;
	const same = (v: string): void => {
		const a = parseOurs(v);
		const b = parsePg(v);
		if (a instanceof Date && b instanceof Date)
			assert.ok(Object.is(a.getTime(), b.getTime()), `${v}: ${a.getTime()} vs ${b.getTime()}`);
		else
			assert.deepEqual(a, b, v);
	};
	/* whole-hour, half-hour, 45-minute and second offsets (LMT before 1900), fractions of every length */
	for (const tz of ['UTC', 'Asia/Kolkata', 'Pacific/Chatham', 'America/St_Johns', 'Africa/Monrovia', 'Europe/Amsterdam']) {
		const c = await db.pool.connect();
		try {
			await c.query(`SET timezone = '${tz}'`);
			const { rows } = await c.query(
				`SELECT (timestamptz '1850-01-01 00:00:00+00' + g * interval '17 days 1 hour 1.000123 seconds'
					+ (g % 7) * interval '1.1 ms')::text AS t
				   FROM generate_series(0, 6000) g`,
			);
			for (const { t } of rows as { t: string }[])
				same(t);
		} finally {
			await c.query('RESET timezone');
			c.release();
		}
	}
	/* the forms read by pg's parser only, and the same text twice (the second from the recent ones) */
	for (const v of ['infinity', '-infinity', '0099-06-01 12:00:00+00', '0999-12-31 23:59:59.999999+00',
		'2000-01-01 00:00:00+00 BC', '2026-12-02 00:00:46.29+00', '2026-12-02 00:00:46.29+00',
		'2026-12-02 00:00:46.57-03:30', '1900-01-01 00:00:00+00:19:32', 'not a date']) {
		same(v);
		same(v);
	}
	/* what a claim reads is a Date of its own each time, even when the text repeats */
	const a = parseOurs('2026-12-02 00:00:46.5+00') as Date;
	const b = parseOurs('2026-12-02 00:00:46.5+00') as Date;
	assert.notEqual(a, b);
	assert.equal(a.getTime(), b.getTime());
});
