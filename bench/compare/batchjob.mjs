// bench/compare/batchjob.mjs - batchjob's own Node client (clients/node,
// built into clients/node/dist) on the workload graphile.mjs and pgboss.mjs
// run: N no-op jobs queued up front (the children of 8 parents, made by
// batchjob_split), one Worker with concurrency 8 and batchSize 100, from
// the start of the worker until the database holds no unfinished child.
// Prints "batchjob-node <jobs/s>".  Issue 12's benchmark (bench/README.md,
// benchmark 10).
//
// node batchjob.mjs HOST PORT DATABASE N   (a fresh, empty database)

import pg from "pg";
import { adminClient, cpuMeter, parseArgs, settle, jobCounter, waitDone } from "./common.mjs";

const NAME = "batchjob-node";
const { conn, jobs } = parseArgs(NAME);
const CONCURRENCY = 8;
const BATCH = Number(process.env.BJ_BATCH ?? 100);
const PARENTS = 8;
const LIMIT_MS = 300000;

const client = await import(new URL("../../clients/node/dist/index.js", import.meta.url));
const { Worker, BatchJobs } = client;

const pool = new pg.Pool({ ...conn, max: CONCURRENCY + 4, application_name: NAME });
pool.on("error", (e) => console.error(`${NAME}: pool: ${e.message}`));
const admin = await adminClient(conn);
let worker;
try {
	// setup, not timed: the extension, then the queue
	await admin.query("CREATE EXTENSION batchjob");
	const api = new BatchJobs(pool);
	const parents = [];
	for (let i = 0; i < PARENTS; i++) {
		const per = Math.floor(jobs / PARENTS) + (i < jobs % PARENTS ? 1 : 0);
		const p = await api.createParent({ bench: i }, "bench");
		await api.split(p.job_id, BigInt(per) * 100n, 100);
		parents.push(p.job_id);
	}
	const queued = Number((await admin.query(
		"SELECT count(*) AS n FROM batch_jobs WHERE NOT is_parent AND status = 'PENDING'")).rows[0].n);
	if (queued !== jobs) throw new Error(`${queued} jobs queued, not ${jobs}`);
	await settle(admin);
	const cpu = await cpuMeter(admin);

	const seen = jobCounter(jobs, LIMIT_MS);
	cpu.start();
	const t0 = performance.now();
	worker = new Worker({
		pool,
		name: NAME,
		concurrency: CONCURRENCY,
		batchSize: BATCH,
		lease: "5 minutes",
		handleSignals: false,
		handler: async () => { seen.add(1); },
	});
	worker.on("error", (e) => console.error(`${NAME}: worker: ${e.message}`));
	await worker.start();
	const tHandled = await seen.all;
	const t1 = await waitDone(admin,
		"SELECT count(*) AS left FROM batch_jobs WHERE NOT is_parent AND status <> 'COMPLETED'", LIMIT_MS);
	cpu.report(NAME, jobs);
	await worker.stop();
	worker = null;
	if (seen.seen !== jobs) throw new Error(`${seen.seen} handler calls for ${jobs} jobs`);
	// every job once on its parent's counters, and nothing broken
	for (;;) {
		const { rows } = await admin.query("SELECT batchjob_fold() AS n");
		if (Number(rows[0].n) === 0) break;
	}
	const { rows: [chk] } = await admin.query(
		"SELECT sum(child_completed) AS done, sum(child_processing + child_pending) AS open FROM batch_jobs WHERE job_id = ANY ($1::bigint[])",
		[parents.map(String)]);
	if (Number(chk.done) !== jobs || Number(chk.open) !== 0)
		throw new Error(`parents count ${chk.done} completed, ${chk.open} open, for ${jobs} jobs`);
	const { rows: bad } = await admin.query("SELECT * FROM batchjob_verify()");
	if (bad.length > 0) throw new Error(`batchjob_verify: ${JSON.stringify(bad[0])}`);
	// where the time went, for bench/out/compare.log
	console.error(`${NAME}: ${jobs} jobs: first handler after ${(seen.first - t0).toFixed(0)} ms, ` +
		`last after ${(tHandled - t0).toFixed(0)} ms, all done after ${(t1 - t0).toFixed(0)} ms`);
	console.log(`${NAME} ${(jobs / ((t1 - t0) / 1000)).toFixed(1)}`);
} catch (e) {
	if (worker) await worker.stop().catch(() => {});
	console.error(`${NAME}: ${e.stack || e}`);
	process.exitCode = 1;
} finally {
	await admin.end().catch(() => {});
	await pool.end().catch(() => {});
}
