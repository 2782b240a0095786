/*
 * test/dashboard-browser.test.ts - the dashboard page in a real browser:
 * Debian's chromium (BATCHJOB_CHROMIUM to use another) driven by
 * playwright-core, against the throwaway cluster.  Every wait polls the DOM
 * for a state, with a bound; nothing asserts on timing.
 *
 * A screenshot taken mid-run is saved as test-output/dashboard.png; the
 * copy in docs/ that the README shows is one of these.
 */

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { chromium, type Browser, type Page } from 'playwright-core';

import { startDashboard, type Dashboard } from 'batchjob/dashboard';

import { sleep, testDb, type TestDb } from './helpers.js';

const OUTPUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-output');
const WAIT = { timeout: 20_000, polling: 50 };

let db: TestDb;
let browser: Browser;
let rw: Dashboard;   /* as a submitter: may cancel and retry, not reap */
let ro: Dashboard;   /* --read-only, as the superuser */
let page: Page;
let priority = 0;

async function newParent(createdBy: string, records: number, batchSize: number): Promise<string> {
	const { rows } = await db.sql(
		`SELECT job_id::text AS id FROM batchjob_create_parent('{}', $1, $2)`,
		[createdBy, ++priority],   /* the newest parent's children are claimed first */
	);
	const id = rows[0].id as string;
	await db.sql('SELECT batchjob_split($1, $2, $3)', [id, records, batchSize]);
	return id;
}

/**
 * A worker's round: claims n children, reports all their records and
 * completes them (or fails `fail` of them); the first child completed
 * reports `recordErrors` of its records as failed.
 */
async function workRound(n: number, fail = 0, recordErrors = 0): Promise<void> {
	const { rows } = await db.sql(
		`SELECT job_id::text AS id, batch_size FROM batchjob_claim('browser-test', $1)`,
		[n],
	);
	for (const [i, r] of rows.entries()) {
		await sleep(5 * (i % 4));   /* a spread of durations for the histogram */
		if (i < fail) {
			await db.sql(`SELECT batchjob_fail($1::bigint, 'upstream said 503', false)`, [r.id]);
		} else {
			const errors = i === fail ? recordErrors : 0;
			await db.sql('SELECT batchjob_progress($1::bigint, $2, $3, $4)',
				[r.id, r.batch_size, r.batch_size - errors, errors]);
			await db.sql('SELECT batchjob_complete($1::bigint)', [r.id]);
		}
	}
}

const row = (id: string): string => `#parents tbody tr[data-job-id="${id}"]`;

async function rowText(id: string, cell: string): Promise<string> {
	return (await page.locator(`${row(id)} ${cell}`).first().textContent()) ?? '';
}

before(async () => {
	db = await testDb('dash_web');
	await db.role('dash_web', 'LOGIN');
	await db.sql(`SELECT batchjob_grant('dash_web', 'submitter')`);
	rw = await startDashboard({ connection: { database: db.database, user: 'dash_web' }, port: 0 });
	ro = await startDashboard({ connection: { database: db.database }, port: 0, readOnly: true });
	browser = await chromium.launch({
		executablePath: process.env.BATCHJOB_CHROMIUM ?? '/usr/bin/chromium',
		headless: true,
		/* chromium's sandbox refuses to run as root */
		args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
	});
	page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
	page.on('pageerror', (err) => assert.fail(`error in the page: ${err.message}`));
});

after(async () => {
	await browser?.close();
	await rw?.close();
	await ro?.close();
	await db.close();
});

test('the page lists parents, newest first', async () => {
	const older = await newParent('alice', 10, 5);
	const newer = await newParent('bob', 10, 5);
	await page.goto(rw.url);
	await page.waitForSelector(row(newer), WAIT);
	const ids = await page.locator('#parents tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-job-id')));
	assert.ok(ids.indexOf(newer) < ids.indexOf(older), `${newer} before ${older}: ${ids.join(',')}`);
	assert.equal(await rowText(newer, '.status'), 'PENDING');
	assert.match(await page.locator('#live').textContent() ?? '', /live/);

	/* filters: status, created_by, id */
	await page.selectOption('#f-status', 'PENDING');
	await page.fill('#f-created-by', 'alice');
	await page.press('#f-created-by', 'Enter');
	await page.waitForFunction(([a, b]) => document.querySelector(`tr[data-job-id="${a}"]`) !== null &&
		document.querySelector(`tr[data-job-id="${b}"]`) === null, [older, newer], WAIT);
	await page.selectOption('#f-status', '');
	await page.fill('#f-created-by', '');
	await page.press('#f-created-by', 'Enter');
	await page.fill('#f-id', newer);
	await page.waitForFunction(([a, b]) => document.querySelector(`tr[data-job-id="${b}"]`) !== null &&
		document.querySelector(`tr[data-job-id="${a}"]`) === null, [older, newer], WAIT);
	await page.fill('#f-id', '');
	await page.waitForSelector(row(older), WAIT);
	await db.sql('SELECT batchjob_cancel($1), batchjob_cancel($2)', [older, newer]);
});

let running: string;

test("a running job's bar moves while a worker completes children; it ends COMPLETED with its failures", async () => {
	running = await newParent('carol', 100, 5);   /* 20 children of 5 records */
	await page.waitForSelector(row(running), WAIT);
	const bar = `${row(running)} .bar`;
	assert.equal(await page.locator(bar).getAttribute('aria-valuenow'), '0');
	assert.equal(await page.locator(bar).getAttribute('aria-valuemax'), '100');

	const widths = async (): Promise<string[]> => page.locator(`${bar} span`)
		.evaluateAll((spans) => spans.map((e) => (e as HTMLElement).style.width));
	for (let round = 1; round <= 3; round++) {
		/* round 1: 2 of its 25 records fail (their child still completes);
		 * round 3: 3 children, after the 2 worker-7 finished */
		await workRound(round === 3 ? 3 : 5, 0, round === 1 ? 2 : 0);
		await page.waitForFunction(([sel, want]) =>
			document.querySelector(sel as string)?.getAttribute('aria-valuenow') === want,
		[bar, String(25 * round)], WAIT);
		/* successes, errors, neither: from the stored parent row, which may lag a moment */
		const want = [`${25 * round - 2}%`, '2%', '0%'];
		await page.waitForFunction(([sel, w]) => [...document.querySelectorAll(`${sel} span`)]
			.map((e) => (e as HTMLElement).style.width).join() === w, [bar, want.join()], WAIT);
		assert.deepEqual(await widths(), want);
		if (round === 2) {
			/* mid-run, two children held by a worker: the parent's children,
			 * histogram and all, for the README */
			await db.sql(`SELECT batchjob_claim('worker-7', 2)`);
			await page.click(`${row(running)} td.num`);
			await page.waitForFunction((sel) => document.querySelectorAll('#histogram .hbar').length > 0 &&
				document.querySelector('#child-table tbody')?.textContent?.includes('worker-7') &&
				document.querySelector(`${sel} .c-processing`)?.textContent === '2 processing', row(running), WAIT);
			mkdirSync(OUTPUT, { recursive: true });
			await page.screenshot({ path: path.join(OUTPUT, 'dashboard.png') });
			await db.sql(`SELECT batchjob_progress(job_id, 5, 5, 0), batchjob_complete(job_id)
			                FROM batch_jobs WHERE locked_by = 'worker-7'`);
		}
	}
	assert.equal(await rowText(running, '.status'), 'PROCESSING');
	assert.match(await rowText(running, '.counts'), /5 pending.*15 completed/);

	await workRound(5, 3);   /* the last five: three fail for good */
	await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'COMPLETED',
		`${row(running)} .status`, WAIT);
	assert.equal(await rowText(running, 'td.failure'), '3 out of 20 batch jobs failed');
	assert.equal(await rowText(running, '.eta'), 'done');
	assert.equal(await page.locator(`${row(running)} .bar`).getAttribute('aria-valuenow'), '85');
	assert.equal(await page.locator(`${row(running)} .bar`).getAttribute('aria-valuemax'), '100');
	assert.equal(await page.locator(`${row(running)} button.cancel`).count(), 0);

	/* the open children view followed: its failed batches are listed */
	await page.waitForFunction(() => [...document.querySelectorAll('#child-table tbody .status')]
		.filter((s) => s.textContent === 'FAILED').length === 3, undefined, WAIT);
	assert.match(await page.locator('#child-table tbody').textContent() ?? '', /upstream said 503/);
});

test('retry and cancel from the page, each after a confirmation', async () => {
	/* a dismissed confirmation changes nothing */
	page.once('dialog', (d) => void d.dismiss());
	await page.click(`${row(running)} button.retry`);
	await sleep(200);
	let { rows } = await db.sql(`SELECT count(*)::int AS n FROM batch_jobs WHERE parent_job_id = $1 AND status = 'FAILED'`, [running]);
	assert.equal(rows[0].n, 3);

	let question = '';
	page.once('dialog', (d) => {
		question = d.message();
		void d.accept();
	});
	await page.click(`${row(running)} button.retry`);
	await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'PROCESSING',
		`${row(running)} .status`, WAIT);
	assert.match(question, /Retry the 3 failed children/);
	({ rows } = await db.sql(`SELECT count(*)::int AS n FROM batch_jobs WHERE parent_job_id = $1 AND status = 'PENDING'`, [running]));
	assert.equal(rows[0].n, 3);

	page.once('dialog', (d) => void d.accept());
	await page.click(`${row(running)} button.cancel`);
	await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'COMPLETED',
		`${row(running)} .status`, WAIT);
	({ rows } = await db.sql(`SELECT count(*)::int AS n FROM batch_jobs WHERE parent_job_id = $1 AND status = 'CANCELLED'`, [running]));
	assert.equal(rows[0].n, 3);
});

test("a refused action shows the server's error text", async () => {
	/* the dashboard's role is a submitter: batchjob_reap is not granted to it */
	page.once('dialog', (d) => void d.accept());
	await page.click('#reap');
	await page.waitForFunction(() => !(document.querySelector('#message') as HTMLElement).hidden, undefined, WAIT);
	assert.match(await page.locator('#message').textContent() ?? '', /permission denied for function batchjob_reap \(42501\)/);
});

test('read-only: no action is offered, and the server refuses them', async () => {
	const p = await newParent('dave', 10, 5);
	const ropage = await browser.newPage();
	await ropage.goto(ro.url);
	await ropage.waitForSelector(row(p), WAIT);
	assert.equal(await ropage.locator('#parents button').count(), 0);
	assert.equal(await ropage.locator('#reap').isHidden(), true);
	const refused = await ropage.evaluate(async (id) => {
		const res = await fetch(`/api/parents/${id}/cancel`, { method: 'POST', headers: { 'X-Batchjob-Dashboard': '1' } });
		return { status: res.status, body: await res.json() };
	}, p);
	assert.deepEqual(refused, { status: 403, body: { error: 'the dashboard is read-only', code: null } });
	const { rows } = await db.sql('SELECT status FROM batch_jobs WHERE job_id = $1', [p]);
	assert.equal(rows[0].status, 'PENDING');
	await ropage.close();
});

test('the children view pages through 10,000 children', async () => {
	const big = await newParent('erin', 10_000, 1);
	await page.waitForSelector(row(big), WAIT);
	await page.click(`${row(big)} td.num`);
	const batches = (): Promise<string[]> => page.locator('#child-table tbody tr')
		.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-batch') ?? ''));
	await page.waitForFunction(() => document.querySelector('#c-parent')?.textContent !== '' &&
		document.querySelector('#child-table tbody tr')?.getAttribute('data-batch') === '1' &&
		document.querySelector('#c-pages')?.textContent === '100', undefined, WAIT);
	let b = await batches();
	assert.equal(b.length, 100);
	assert.equal(b[99], '100');
	assert.equal(await page.locator('#c-total').textContent(), '10,000');

	await page.click('.pager button[data-page="last"]');
	await page.waitForFunction(() => document.querySelector('#c-page')?.textContent === '100', undefined, WAIT);
	b = await batches();
	assert.equal(b.length, 100);
	assert.equal(b[0], '9901');
	assert.equal(b[99], '10000');
	assert.match(await page.locator('#child-table tbody tr').last().textContent() ?? '', /PENDING/);

	await page.click('.pager button[data-page="prev"]');
	await page.waitForFunction(() => document.querySelector('#c-page')?.textContent === '99', undefined, WAIT);
	b = await batches();
	assert.equal(b[0], '9801');
	assert.equal(b[99], '9900');

	await page.click('.pager button[data-page="first"]');
	await page.waitForFunction(() => document.querySelector('#c-page')?.textContent === '1', undefined, WAIT);
	assert.equal((await batches())[0], '1');
});
