// bench/compare/pgboss.mjs - pg-boss on batchjob's claim workload
// (bench/README.md, benchmark 4): N no-op jobs queued up front, 8 workers
// (localConcurrency 8), each fetching batchSize 100 jobs per query and
// completing the batch with one call when its handler returns, from the
// start of the workers until the database holds no unfinished job.
// burstWhenBatchFull lets a worker fetch again at once while its fetches
// come back full (without it each worker waits its polling interval, at
// least 0.5 s, between batches).  Prints "pg-boss <jobs/s>".
//
// node pgboss.mjs HOST PORT DATABASE N   (a fresh, empty database)

import { PgBoss } from "pg-boss";
import { adminClient, cpuMeter, parseArgs, settle, jobCounter, waitDone } from "./common.mjs";

const NAME = "pg-boss";
const { conn, jobs } = parseArgs(NAME);
const WORKERS = 8;
const BATCH = 100;
const CHUNK = 10000;
const LIMIT_MS = 300000;
const QUEUE = "noop";

const boss = new PgBoss({ ...conn, max: WORKERS + 4, application_name: NAME });
boss.on("error", (e) => console.error(`${NAME}: ${e.message}`));
const admin = await adminClient(conn);
let started = false;
try {
	// setup, not timed: the schema, the queue, the jobs
	await boss.start();
	started = true;
	await boss.createQueue(QUEUE);
	for (let done = 0; done < jobs; done += CHUNK) {
		const n = Math.min(CHUNK, jobs - done);
		await boss.insert(QUEUE, Array.from({ length: n }, () => ({ data: {} })));
	}
	const queued = Number((await admin.query(
		"SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND state = 'created'",
		[QUEUE])).rows[0].n);
	if (queued !== jobs) throw new Error(`${queued} jobs queued, not ${jobs}`);
	await settle(admin);
	const cpu = await cpuMeter(admin);

	const seen = jobCounter(jobs, LIMIT_MS);
	cpu.start();
	const t0 = performance.now();
	await boss.work(QUEUE, {
		batchSize: BATCH,
		localConcurrency: WORKERS,
		burstWhenBatchFull: true,
		pollingIntervalSeconds: 0.5,
	}, async (batch) => { seen.add(batch.length); });
	const tHandled = await seen.all;
	const t1 = await waitDone(admin, {
		text: "SELECT count(*) AS left FROM pgboss.job WHERE name = $1 AND state <> 'completed'",
		values: [QUEUE],
	}, LIMIT_MS);
	cpu.report(NAME, jobs);
	if (seen.seen !== jobs) throw new Error(`${seen.seen} jobs handled for ${jobs} queued`);
	// where the time went, for bench/out/compare.log
	console.error(`${NAME}: ${jobs} jobs: first handler after ${(seen.first - t0).toFixed(0)} ms, ` +
		`last after ${(tHandled - t0).toFixed(0)} ms, all done after ${(t1 - t0).toFixed(0)} ms`);
	console.log(`${NAME} ${(jobs / ((t1 - t0) / 1000)).toFixed(1)}`);
} catch (e) {
	console.error(`${NAME}: ${e.stack || e}`);
	process.exitCode = 1;
} finally {
	if (started) await boss.stop({ graceful: true, timeout: 10000 }).catch(() => {});
	await admin.end().catch(() => {});
}
