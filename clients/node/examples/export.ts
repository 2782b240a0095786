/*
 * examples/export.ts - a small CLI: splits an export of 1,000,000 records
 * into batches, runs N workers on them, and shows a live progress bar with
 * the rate and the estimated time left, read from batch_job_progress.
 *
 *   npm run build && npx tsc -p tsconfig.json
 *   node build/examples/export.js --records 1000000 --batch 1000 --workers 4
 *
 * Connects with the usual PG* environment variables (PGHOST, PGDATABASE, …)
 * to a database with CREATE EXTENSION batchjob.
 */

import { parseArgs } from 'node:util';

import pg from 'pg';

import { BatchJobs, JobFailure, Worker, type BatchJob } from 'batchjob';

interface ExportCriteria {
	export: string;
	format: string;
}

const { values: args } = parseArgs({
	options: {
		records: { type: 'string', default: '1000000' },
		batch: { type: 'string', default: '1000' },
		workers: { type: 'string', default: '4' },
		concurrency: { type: 'string', default: '2' },
		'work-ms': { type: 'string', default: '5' },
		'fail-every': { type: 'string', default: '0' },
	},
});
const records = BigInt(args.records);
const batchSize = Number(args.batch);
const workers = Number(args.workers);
const concurrency = Number(args.concurrency);
const workMs = Number(args['work-ms']);
const failEvery = Number(args['fail-every']);

const pool = new pg.Pool({ max: workers * 2 + 4 });
const api = new BatchJobs<ExportCriteria>(pool);

const parent = await api.createParent({ export: 'customers', format: 'csv' }, 'export-cli');
const batches = await api.split(parent.job_id, records, batchSize);
console.log(`parent job ${parent.job_id}: ${records.toLocaleString()} records in ${batches.toLocaleString()} batches of ${batchSize}, ${workers} workers × ${concurrency}`);

/* the work of one batch: here a sleep; a real export would write records out */
async function exportBatch(job: BatchJob<ExportCriteria>, ctx: { signal: AbortSignal }): Promise<{ processed: bigint; succeeded: bigint; failed: bigint }> {
	await new Promise<void>((resolve, reject) => {
		const t = setTimeout(resolve, workMs);
		ctx.signal.addEventListener('abort', () => {
			clearTimeout(t);
			reject(ctx.signal.reason);
		}, { once: true });
	});
	const n = BigInt(job.batch_size ?? 0);
	if (failEvery > 0 && (job.batch_number ?? 0) % failEvery === 0)
		throw new JobFailure(`batch ${job.batch_number} could not be written`, { retry: false });
	return { processed: n, succeeded: n, failed: 0n };
}

const running = Array.from({ length: workers }, (_, i) => {
	const w = new Worker<ExportCriteria>({
		pool,
		name: `export-${i + 1}`,
		concurrency,
		batchSize: concurrency,
		lease: '1 minute',
		pollIntervalMs: 500,
		handler: exportBatch,
	});
	w.on('error', (err) => console.error(`\nworker ${i + 1}: ${String(err)}`));
	return w;
});
await Promise.all(running.map((w) => w.start()));

function bar(fraction: number, width = 30): string {
	const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
	return '█'.repeat(full) + '░'.repeat(width - full);
}

function duration(seconds: number): string {
	if (!Number.isFinite(seconds) || seconds < 0)
		return '--:--';
	const s = Math.round(seconds);
	const h = Math.floor(s / 3600);
	const m = Math.floor((s % 3600) / 60);
	const ss = String(s % 60).padStart(2, '0');
	return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

async function draw(): Promise<void> {
	const p = await api.progress(parent.job_id);
	if (p === null)
		return;
	const total = p.total_records ?? 0n;
	const fraction = total > 0n ? Number((p.processed_records * 10000n) / total) / 10000 : 0;
	const rate = p.records_per_second ?? 0;
	const eta = rate > 0 ? Number(total - p.processed_records) / rate : NaN;
	process.stdout.write(
		`\r${bar(fraction)} ${(fraction * 100).toFixed(1).padStart(5)}%  ` +
		`${p.processed_records.toLocaleString()}/${total.toLocaleString()}  ` +
		`${Math.round(rate).toLocaleString()} rec/s  ETA ${duration(eta)}  ` +
		`[${p.completed} done, ${p.processing} running, ${p.failed} failed]   `,
	);
}

const ticker = setInterval(() => void draw().catch(() => undefined), 250);
const done = await api.waitForParent(parent.job_id);
clearInterval(ticker);
await draw();
await Promise.all(running.map((w) => w.stop()));
const secs = (done.completed_at!.getTime() - done.started_at!.getTime()) / 1000;
console.log(`\nparent job ${done.job_id} ${done.status} in ${duration(secs)}${done.error_details !== null ? `: ${done.error_details}` : ''}`);
await pool.end();
