// bench/compare/graphile.mjs - graphile-worker on batchjob's claim workload
// (bench/README.md, benchmark 4): N no-op jobs queued up front, 8 workers
// (concurrentJobs 8 in one pool) in batched mode (localQueue: the pool
// fetches and locks GW_LOCAL_QUEUE jobs per query; completeJobBatchDelay:
// completions are gathered into one statement), from the start of the
// runner until the database holds no unfinished job.  Prints
// "graphile-worker <jobs/s>".
//
// node graphile.mjs HOST PORT DATABASE N   (a fresh, empty database)

import pg from "pg";
import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker";
import { adminClient, cpuMeter, parseArgs, settle, jobCounter, waitDone } from "./common.mjs";

const NAME = "graphile-worker";
const { conn, jobs } = parseArgs(NAME);
const WORKERS = 8;
const LOCAL_QUEUE = Number(process.env.GW_LOCAL_QUEUE ?? 100);
const COMPLETE_DELAY = Number(process.env.GW_COMPLETE_DELAY ?? 0);
const CHUNK = 10000;
const LIMIT_MS = 300000;

// warnings and errors only
const logger = new Logger(() => (level, message) => {
	if (level === "error" || level === "warning") console.error(`${NAME}: ${message}`);
});

const pool = new pg.Pool({ ...conn, max: WORKERS + 4, application_name: NAME });
pool.on("error", (e) => console.error(`${NAME}: pool: ${e.message}`));
pool.on("connect", (c) => c.on("error", (e) => console.error(`${NAME}: client: ${e.message}`)));
const admin = await adminClient(conn);
let runner;
try {
	// setup, not timed: the schema, then the queue
	await runMigrations({ pgPool: pool, logger });
	const utils = await makeWorkerUtils({ pgPool: pool, logger });
	for (let done = 0; done < jobs; done += CHUNK) {
		const n = Math.min(CHUNK, jobs - done);
		await utils.addJobs(Array.from({ length: n }, () => ({ identifier: "noop", payload: {} })));
	}
	await utils.release();
	const queued = Number((await admin.query(
		"SELECT count(*) AS n FROM graphile_worker._private_jobs")).rows[0].n);
	if (queued !== jobs) throw new Error(`${queued} jobs queued, not ${jobs}`);
	await settle(admin);
	const cpu = await cpuMeter(admin);

	const seen = jobCounter(jobs, LIMIT_MS);
	cpu.start();
	const t0 = performance.now();
	runner = await run({
		pgPool: pool,
		logger,
		concurrency: WORKERS,
		noHandleSignals: true,
		taskList: { noop: async () => { seen.add(1); } },
		preset: {
			worker: {
				localQueue: { size: LOCAL_QUEUE },
				completeJobBatchDelay: COMPLETE_DELAY,
			},
		},
	});
	const tHandled = await seen.all;
	// a finished job is deleted from the queue
	const t1 = await waitDone(admin,
		"SELECT count(*) AS left FROM graphile_worker._private_jobs", LIMIT_MS);
	cpu.report(NAME, jobs);
	await runner.stop();
	runner = null;
	if (seen.seen !== jobs) throw new Error(`${seen.seen} handler calls for ${jobs} jobs`);
	// where the time went, for bench/out/compare.log
	console.error(`${NAME}: ${jobs} jobs: first handler after ${(seen.first - t0).toFixed(0)} ms, ` +
		`last after ${(tHandled - t0).toFixed(0)} ms, all done after ${(t1 - t0).toFixed(0)} ms`);
	console.log(`${NAME} ${(jobs / ((t1 - t0) / 1000)).toFixed(1)}`);
} catch (e) {
	if (runner) await runner.stop().catch(() => {});
	console.error(`${NAME}: ${e.stack || e}`);
	process.exitCode = 1;
} finally {
	await admin.end().catch(() => {});
	await pool.end().catch(() => {});
}
