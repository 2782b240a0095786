/*
 * test/dashboard-api.test.ts - every endpoint of the dashboard's HTTP API
 * (src/dashboard-server.ts) against a real server: filters, pages, bad
 * input, actions and their refusals, read-only mode, roles, tenant
 * isolation, tokens, and the Server-Sent Events driven by LISTEN.
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { startDashboard, type Dashboard, type DashboardOptions } from 'batchjob/dashboard';

import { eventually, testDb, type TestDb } from './helpers.js';

let db: TestDb;
const dashboards: Dashboard[] = [];

async function dashboard(options: Partial<DashboardOptions> = {}): Promise<Dashboard> {
	const d = await startDashboard({ connection: { database: db.database }, port: 0, ...options });
	dashboards.push(d);
	return d;
}

interface Reply {
	status: number;
	body: any;
	headers: Headers;
}

async function call(d: Dashboard, path: string, init: RequestInit & { action?: boolean } = {}): Promise<Reply> {
	const headers = new Headers(init.headers);
	if (init.method === 'POST' && init.action !== false)
		headers.set('X-Batchjob-Dashboard', '1');
	const res = await fetch(new URL(path, d.url), { ...init, headers });
	const text = await res.text();
	let body: unknown = text;
	if ((res.headers.get('content-type') ?? '').startsWith('application/json'))
		body = JSON.parse(text);
	return { status: res.status, body, headers: res.headers };
}

let priority = 0;

/**
 * A parent with n children of one record each; the first `failed` fail for
 * good, the next `done` complete.  Each parent outranks the ones before, so
 * the claims here (and the tests' own) take the newest parent's children.
 */
async function parentWith(createdBy: string, n: number, done = 0, failed = 0): Promise<string> {
	const { rows } = await db.sql(
		`SELECT job_id::text AS id FROM batchjob_create_parent('{}', $1, $2)`,
		[createdBy, ++priority],
	);
	const id = rows[0].id as string;
	await db.sql('SELECT batchjob_split($1, $2, 1)', [id, n]);
	if (failed > 0)
		await db.sql(
			`SELECT batchjob_fail(job_id, 'bad record', false) FROM batchjob_claim('t', $1)`,
			[failed],
		);
	if (done > 0)
		await db.sql(
			`SELECT batchjob_progress(job_id, 1, 1, 0), batchjob_complete(job_id) FROM batchjob_claim('t', $1)`,
			[done],
		);
	return id;
}

let rw: Dashboard;
let ro: Dashboard;
let p1: string; /* alice: 250 children, 3 failed, 40 done */
let p2: string; /* bob: 5 children, all done */

before(async () => {
	db = await testDb('dash_api');
	p1 = await parentWith('alice', 250, 40, 3);
	p2 = await parentWith('bob', 5, 5);
	rw = await dashboard();
	ro = await dashboard({ readOnly: true });
});

after(async () => {
	await Promise.all(dashboards.map((d) => d.close()));
	await db.close();
});

describe('GET /api/parents', () => {
	test('newest first, bigints as strings, figures from the progress view', async () => {
		const r = await call(rw, '/api/parents');
		assert.equal(r.status, 200);
		assert.deepEqual(r.body.map((p: any) => p.job_id), [p2, p1]);
		const a = r.body[1];
		assert.equal(a.status, 'PROCESSING');
		assert.equal(a.created_by, 'alice');
		assert.equal(a.children, '250');
		assert.equal(a.failed, '3');
		assert.equal(a.completed, '40');
		assert.equal(a.pending, '207');
		assert.equal(a.processed_records, '40');
		assert.equal(a.total_records, '250');
		assert.equal(typeof a.percent_done, 'number');
		assert.equal(typeof a.age_seconds, 'number');
		/* a running parent's ETA is never negative; a finished one has none */
		assert.ok(a.eta_seconds === null ? a.estimated_finish === null : a.eta_seconds >= 0);
		const b = r.body[0];
		assert.equal(b.status, 'COMPLETED');
		assert.equal(b.eta_seconds, null);
		assert.equal(b.error_details, null);
		assert.equal(b.success_count, '5');
	});

	test('filters: status, created_by, id, before, limit', async () => {
		assert.deepEqual((await call(rw, '/api/parents?status=COMPLETED')).body.map((p: any) => p.job_id), [p2]);
		assert.deepEqual((await call(rw, '/api/parents?created_by=alice')).body.map((p: any) => p.job_id), [p1]);
		assert.deepEqual((await call(rw, `/api/parents?id=${p1}`)).body.map((p: any) => p.job_id), [p1]);
		assert.deepEqual((await call(rw, `/api/parents?before=${p2}`)).body.map((p: any) => p.job_id), [p1]);
		assert.deepEqual((await call(rw, '/api/parents?limit=1')).body.map((p: any) => p.job_id), [p2]);
		assert.deepEqual((await call(rw, '/api/parents?created_by=nobody')).body, []);
	});

	test('bad filters: 400 with a JSON error', async () => {
		for (const q of ['status=DONE', 'id=abc', 'id=99999999999999999999', 'limit=0', 'limit=x', 'before=-1']) {
			const r = await call(rw, `/api/parents?${q}`);
			assert.equal(r.status, 400, q);
			assert.equal(typeof r.body.error, 'string', q);
		}
	});
});

describe('GET /api/parents/:id', () => {
	test('one parent; unknown id 404; not a number 400', async () => {
		const r = await call(rw, `/api/parents/${p1}`);
		assert.equal(r.status, 200);
		assert.equal(r.body.job_id, p1);
		const missing = await call(rw, '/api/parents/999999');
		assert.equal(missing.status, 404);
		assert.deepEqual(missing.body, { error: 'parent job 999999 does not exist', code: 'P0002' });
		const bad = await call(rw, '/api/parents/1x');
		assert.equal(bad.status, 400);
		assert.match(bad.body.error, /is not a job id/);
		assert.equal((await call(rw, '/api/nothing')).status, 404);
	});
});

describe('GET /api/parents/:id/children', () => {
	test('pages of 100 by batch_number, with status, attempts, worker, lease and durations', async () => {
		const first = await call(rw, `/api/parents/${p1}/children`);
		assert.equal(first.status, 200);
		assert.equal(first.body.page, 1);
		assert.equal(first.body.pages, 3);
		assert.equal(first.body.total, '250');
		assert.equal(first.body.children.length, 100);
		const c1 = first.body.children[0];
		assert.equal(c1.batch_number, 1);
		assert.equal(c1.status, 'FAILED');
		assert.equal(c1.error_details, 'bad record');
		assert.equal(c1.attempts, 1);
		assert.equal(typeof c1.duration_seconds, 'number');
		const c4 = first.body.children[3];
		assert.equal(c4.status, 'COMPLETED');
		const last = await call(rw, `/api/parents/${p1}/children?page=3`);
		assert.equal(last.body.children.length, 50);
		assert.equal(last.body.children[0].batch_number, 201);
		assert.equal(last.body.children[49].batch_number, 250);
		assert.equal(last.body.children[49].status, 'PENDING');
		assert.equal(last.body.children[49].locked_by, null);
	});

	test('a PROCESSING child shows its worker and lease', async () => {
		const p = await parentWith('carol', 1);
		await db.sql(`SELECT batchjob_claim('worker-9')`);
		const r = await call(rw, `/api/parents/${p}/children`);
		const c = r.body.children[0];
		assert.equal(c.status, 'PROCESSING');
		assert.equal(c.locked_by, 'worker-9');
		assert.ok(Date.parse(c.locked_until) > Date.now());
		await db.sql('SELECT batchjob_cancel($1)', [p]);
	});

	test('bad input: page past the end 404, bad page 400, unknown parent 404, not a parent 400', async () => {
		const past = await call(rw, `/api/parents/${p1}/children?page=4`);
		assert.equal(past.status, 404);
		assert.match(past.body.error, /page 4 is past the last page \(3\)/);
		for (const page of ['0', '-1', 'x', '1.5']) {
			const r = await call(rw, `/api/parents/${p1}/children?page=${page}`);
			assert.equal(r.status, 400, page);
		}
		const unknown = await call(rw, '/api/parents/999999/children');
		assert.equal(unknown.status, 404);
		assert.equal(unknown.body.code, '23503');
		const { rows } = await db.sql('SELECT job_id::text AS id FROM batch_jobs WHERE parent_job_id = $1 LIMIT 1', [p1]);
		const child = await call(rw, `/api/parents/${rows[0].id}/children`);
		assert.equal(child.status, 400);
		assert.equal(child.body.code, '22023');
		assert.equal((await call(rw, '/api/parents/abc/children')).status, 400);
	});

	test('a parent without children: page 1 is empty (200), page 2 is 404', async () => {
		const { rows } = await db.sql(`SELECT job_id::text AS id FROM batchjob_create_parent('{}', 'dave')`);
		const r = await call(rw, `/api/parents/${rows[0].id}/children`);
		assert.equal(r.status, 200);
		assert.deepEqual(r.body.children, []);
		assert.equal(r.body.pages, 1);
		assert.equal((await call(rw, `/api/parents/${rows[0].id}/children?page=2`)).status, 404);
		await db.sql('DELETE FROM batch_jobs WHERE job_id = $1', [rows[0].id]);
	});
});

describe('GET /api/parents/:id/durations', () => {
	test('a histogram of the finished children', async () => {
		const r = await call(rw, `/api/parents/${p1}/durations`);
		assert.equal(r.status, 200);
		assert.equal(r.body.count, '43');
		const sum = r.body.buckets.reduce((s: bigint, b: any) => s + BigInt(b.count), 0n);
		assert.equal(sum, 43n);
		assert.equal((await call(rw, '/api/parents/999999/durations')).status, 404);
	});
});

describe('actions', () => {
	test('cancel a parent: its unfinished children are cancelled', async () => {
		const p = await parentWith('erin', 4, 1);
		const r = await call(rw, `/api/parents/${p}/cancel`, { method: 'POST' });
		assert.equal(r.status, 200);
		assert.deepEqual(r.body, { job_id: p, cancelled: '3' });   /* the three unfinished children */
		const { rows } = await db.sql('SELECT status FROM batch_job_progress WHERE job_id = $1', [p]);
		assert.equal(rows[0].status, 'COMPLETED');
	});

	test('retry a parent: its failed children go back to PENDING; none failed is 409', async () => {
		const r = await call(rw, `/api/parents/${p1}/retry`, { method: 'POST' });
		assert.equal(r.status, 200);
		const { rows } = await db.sql(
			`SELECT count(*)::int AS n FROM batch_jobs WHERE parent_job_id = $1 AND status = 'FAILED'`,
			[p1],
		);
		assert.equal(rows[0].n, 0);
		const again = await call(rw, `/api/parents/${p1}/retry`, { method: 'POST' });
		assert.equal(again.status, 409);
		assert.equal(again.body.code, '55000');
		assert.equal(typeof again.body.error, 'string');
	});

	test('unknown job 404, bad id 400, GET 405, no header 403, reap 200', async () => {
		const unknown = await call(rw, '/api/parents/999999/cancel', { method: 'POST' });
		assert.equal(unknown.status, 404);
		assert.equal(unknown.body.code, 'P0002');
		assert.equal((await call(rw, '/api/parents/x/cancel', { method: 'POST' })).status, 400);
		assert.equal((await call(rw, `/api/parents/${p1}/cancel`)).status, 405);
		assert.equal((await call(rw, `/api/parents/${p1}/cancel`, { method: 'POST', action: false })).status, 403);
		assert.equal((await call(rw, '/api/parents', { method: 'POST' })).status, 405);
		const reap = await call(rw, '/api/reap', { method: 'POST' });
		assert.equal(reap.status, 200);
		assert.equal(reap.body.reaped, '0');
	});

	test('read-only: every action refused with 403, nothing changed', async () => {
		const p = await parentWith('frank', 2);
		for (const path of [`/api/parents/${p}/cancel`, `/api/parents/${p}/retry`, '/api/reap']) {
			const r = await call(ro, path, { method: 'POST' });
			assert.equal(r.status, 403, path);
			assert.equal(r.body.error, 'the dashboard is read-only');
		}
		const { rows } = await db.sql('SELECT status FROM batch_jobs WHERE job_id = $1', [p]);
		assert.equal(rows[0].status, 'PENDING');
		assert.deepEqual((await call(ro, '/api/config')).body.read_only, true);
		assert.equal((await call(ro, '/api/parents')).status, 200);
	});
});

describe('roles and tenants', () => {
	test('a role without the privilege: 403 with the server text; a role with no level reads nothing', async () => {
		await db.role('dash_sub', 'LOGIN');
		await db.sql(`SELECT batchjob_grant('dash_sub', 'submitter')`);
		const sub = await dashboard({ connection: { database: db.database, user: 'dash_sub' } });
		const reap = await call(sub, '/api/reap', { method: 'POST' });
		assert.equal(reap.status, 403);
		assert.equal(reap.body.code, '42501');
		assert.match(reap.body.error, /permission denied/);
		assert.equal((await call(sub, '/api/parents')).status, 200);

		await db.role('dash_none', 'LOGIN');
		const none = await dashboard({ connection: { database: db.database, user: 'dash_none' } });
		const r = await call(none, '/api/parents');
		assert.equal(r.status, 403);
		assert.equal(r.body.code, '42501');
	});

	test('tenant isolation applies unchanged: a submitter sees and acts on its own parents only', async () => {
		await db.role('alice', 'LOGIN');
		await db.sql(`SELECT batchjob_grant('alice', 'submitter')`);
		await db.sql(`ALTER ROLE alice SET batchjob.tenant_isolation = on`);
		const a = await dashboard({ connection: { database: db.database, user: 'alice' } });
		const list = await call(a, '/api/parents');
		assert.ok(list.body.length > 0);
		assert.ok(list.body.every((p: any) => p.created_by === 'alice'));
		assert.equal((await call(a, `/api/parents/${p2}`)).status, 404);
		assert.equal((await call(a, `/api/parents/${p2}/children`)).status, 404);
		const cancel = await call(a, `/api/parents/${p2}/cancel`, { method: 'POST' });
		assert.equal(cancel.status, 404);
		assert.equal(cancel.body.code, 'P0002');
		assert.equal((await call(a, `/api/parents/${p1}/children`)).status, 200);
	});
});

describe('tokens', () => {
	test('without the token every request is 401; with it, header or ?token=', async () => {
		const d = await dashboard({ token: 's3cret' });
		for (const path of ['/', '/dashboard.js', '/api/parents', `/api/parents/${p1}/children`, '/api/events']) {
			const r = await call(d, path);
			assert.equal(r.status, 401, path);
			assert.equal(r.headers.get('www-authenticate'), 'Bearer');
			const wrong = await call(d, path, { headers: { Authorization: 'Bearer s3cres' } });
			assert.equal(wrong.status, 401, path);
		}
		assert.equal((await call(d, '/api/reap', { method: 'POST' })).status, 401);
		assert.deepEqual((await call(d, '/api/parents')).body.error.startsWith('a valid token'), true);
		assert.equal((await call(d, '/api/parents', { headers: { Authorization: 'Bearer s3cret' } })).status, 200);
		assert.equal((await call(d, '/?token=s3cret')).status, 200);
		assert.equal((await call(d, '/api/parents?token=s3cret')).status, 200);
		assert.equal((await call(d, '/api/parents?token=s3cre')).status, 401);
	});
});

describe('GET /api/events', () => {
	/** Reads `parents` events from the stream until want() accepts one. */
	function events(d: Dashboard): { next(want: (data: any) => boolean): Promise<any>; close(): void; } {
		const req = http.get(new URL('/api/events', d.url));
		let buffer = '';
		const seen: any[] = [];
		const waiters: { want: (data: any) => boolean; resolve: (v: any) => void }[] = [];
		const offer = (): void => {
			for (const w of [...waiters]) {
				const hit = seen.find(w.want);
				if (hit !== undefined) {
					waiters.splice(waiters.indexOf(w), 1);
					w.resolve(hit);
				}
			}
		};
		req.on('response', (res) => {
			assert.equal(res.headers['content-type'], 'text/event-stream');
			res.setEncoding('utf8');
			res.on('data', (chunk: string) => {
				buffer += chunk;
				let i;
				while ((i = buffer.indexOf('\n\n')) >= 0) {
					const block = buffer.slice(0, i);
					buffer = buffer.slice(i + 2);
					const m = /^event: parents\ndata: (.*)$/m.exec(block);
					if (m?.[1] !== undefined)
						seen.push(JSON.parse(m[1]));
				}
				offer();
			});
		});
		req.on('error', () => undefined);
		return {
			next: (want) => new Promise((resolve) => {
				waiters.push({ want, resolve });
				offer();
			}),
			close: () => req.destroy(),
		};
	}

	test('the snapshot comes at once, and again after a NOTIFY, without waiting for a tick', async () => {
		/* a tick of an hour: only the connection and the notifications drive this stream */
		const d = await dashboard({ tickMs: 3_600_000 });
		const s1 = events(d);
		const s2 = events(d);
		const first = await s1.next((e) => Array.isArray(e.parents));
		assert.ok(first.parents.some((p: any) => p.job_id === p1));
		assert.equal(first.read_only, false);
		await s2.next((e) => Array.isArray(e.parents));

		const p = await parentWith('gina', 2);        /* the split NOTIFYs batchjob_jobs_available */
		await s1.next((e) => e.parents.some((x: any) => x.job_id === p));
		await db.sql(`SELECT batchjob_complete(job_id) FROM batchjob_claim('t', 2)`); /* parent_done */
		const done = await s2.next((e) => e.parents.some((x: any) => x.job_id === p && x.status === 'COMPLETED'));
		assert.ok(done);
		s1.close();
		s2.close();
	});

	test('a tick brings changes that send no notification', async () => {
		const d = await dashboard({ tickMs: 100 });
		const s = events(d);
		await s.next((e) => Array.isArray(e.parents));
		const p = await parentWith('hank', 3);
		await db.sql(`SELECT batchjob_claim('t', 1)`);   /* no notification for a claim */
		await s.next((e) => e.parents.some((x: any) => x.job_id === p && x.processing === '1'));
		s.close();
		await db.sql('SELECT batchjob_cancel($1)', [p]);
	});
});

test('the page and its assets', async () => {
	const page = await call(rw, '/');
	assert.equal(page.status, 200);
	assert.match(page.headers.get('content-type') ?? '', /text\/html/);
	assert.match(page.body, /<table id="parents">/);
	assert.match((await call(rw, '/dashboard.js')).headers.get('content-type') ?? '', /javascript/);
	assert.match((await call(rw, '/dashboard.css')).headers.get('content-type') ?? '', /text\/css/);
	assert.equal((await call(rw, '/dashboard.js', { method: 'POST', action: false })).status, 405);
	assert.equal(rw.url.startsWith('http://127.0.0.1:'), true);
});

test('the command: node dist/dashboard.js with --database-url, --port, --read-only and --token', async () => {
	const { spawn } = await import('node:child_process');
	const { fileURLToPath } = await import('node:url');
	const cli = fileURLToPath(new URL('../../dist/dashboard.js', import.meta.url));
	const url = `postgresql:///${db.database}?host=${encodeURIComponent(process.env.PGHOST ?? '')}` +
		`&port=${process.env.PGPORT ?? '5432'}&user=${process.env.PGUSER ?? 'postgres'}`;
	const child = spawn(process.execPath, [cli, '--database-url', url, '--port', '0', '--read-only', '--token', 'tk'],
		{ stdio: ['ignore', 'pipe', 'pipe'] });
	try {
		let out = '';
		child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
		child.stderr.setEncoding('utf8').on('data', (s: string) => { out += s; });
		const base = await eventually(() => /on (http:\/\/127\.0\.0\.1:\d+\/) \(read-only\)/.exec(out)?.[1], `the command's address (${out})`, 15_000);
		assert.equal((await fetch(new URL('/api/config', base))).status, 401);
		const res = await fetch(new URL('/api/config', base), { headers: { Authorization: 'Bearer tk' } });
		assert.equal(res.status, 200);
		assert.equal((await res.json()).read_only, true);
	} finally {
		child.kill('SIGTERM');
	}
	const code = await new Promise((resolve) => child.once('exit', (c) => resolve(c)));
	assert.equal(code, 0);

	const bad = spawn(process.execPath, [cli, '--port', '1'], { stdio: 'ignore' });
	assert.equal(await new Promise((resolve) => bad.once('exit', (c) => resolve(c))), 2);
});
