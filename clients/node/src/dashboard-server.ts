/*
 * src/dashboard-server.ts - the live progress dashboard: an HTTP server
 * (node:http, no framework) that serves one page (static/) and a JSON API
 * over batch_job_progress, and pushes the newest parents to every open page
 * over Server-Sent Events.
 *
 * Cost: one dedicated connection LISTENs on batchjob_parent_done and
 * batchjob_jobs_available; a tick (every tickMs, and soon after each
 * notification) reads the newest parents from the progress view ONCE and
 * sends the same snapshot to every browser.  The view reads each parent's
 * counters, never its children; but batch_jobs has no index that finds its
 * parents among the children, so "the newest parents" costs a scan of the
 * table (about 0.2 s at a million children).  A tick therefore reads the
 * parents it already knows by id, plus any job above the highest id of two
 * ticks ago (new rows only); the full read runs when the first page opens
 * and every FULL_READ_MS after, for a parent whose transaction committed
 * late, or one inserted with an explicit lower id.  No tick runs while no
 * page is open.  The children of a parent are read only when a page asks
 * for them, one page of PAGE_SIZE at a time; pages asking for the same
 * children page or histogram while it is being read share that read.
 *
 * The server connects as the role of its connection settings and shows what
 * that role may see: tenant isolation and privileges apply unchanged, and an
 * action the role may not take is refused by the database (42501 → 403).
 * bigint values (ids, record counts, child counts) are sent as strings.
 */

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import pg from 'pg';

import { CHANNEL_JOBS_AVAILABLE, CHANNEL_PARENT_DONE } from './batchjobs.js';
import { quoteIdent } from './sql.js';

export interface DashboardOptions {
	/** Connection settings for the pool and the LISTEN connection (e.g. { connectionString }). */
	connection: pg.ClientConfig;
	/** Port to listen on (default 8080; 0 picks a free one). */
	port?: number;
	/** Address to bind (default 127.0.0.1). */
	host?: string;
	/** Hide and refuse cancel, retry and reap. */
	readOnly?: boolean;
	/** When set, every request needs `Authorization: Bearer <token>` or `?token=<token>`. */
	token?: string | null;
	/** The schema the extension lives in; unqualified names otherwise. */
	schema?: string;
	/** How often the progress snapshot is read while a page is open (default 1000 ms). */
	tickMs?: number;
	/** How many of the newest parents the live snapshot holds (default 200). */
	snapshotLimit?: number;
}

export interface Dashboard {
	/** The page's address, e.g. http://127.0.0.1:8080/ */
	url: string;
	server: http.Server;
	/** Stops the server, the ticks, the LISTEN connection and the pool. */
	close(): Promise<void>;
}

/** Children per page of /api/parents/:id/children. */
export const PAGE_SIZE = 100;
/** The most parents /api/parents returns at once. */
const MAX_LIMIT = 500;
/** Buckets of the duration histogram. */
const BUCKETS = 20;
const MAX_BIGINT = 2n ** 63n - 1n;
/* How often the live snapshot reads all parents again (a scan of batch_jobs). */
const FULL_READ_MS = 60_000;
const STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'];

/** An error with the HTTP status and JSON body it answers with. */
class HttpError extends Error {
	constructor(readonly status: number, message: string, readonly code: string | null = null) {
		super(message);
	}
}

/* SQLSTATE → HTTP status for errors the database raises for an action or a read */
const STATUS_FOR_SQLSTATE: Record<string, number> = {
	'42501': 403,
	P0002: 404,
	'23503': 404,
	'22023': 400,
	'22004': 400,
	'55000': 409,
};

/* text and bigint as strings; numeric, int4 and float as numbers; timestamps as ISO text */
const types: pg.CustomTypesConfig = {
	getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
		if (format === undefined || format === 'text') {
			if (oid === 20 || oid === 1700 || oid === 701)
				return oid === 20 ? (v: string) => v : (v: string) => Number(v);
			if (oid === 1184)
				return (v: string) => new Date(v).toISOString();
		}
		return pg.types.getTypeParser(oid, format ?? 'text');
	}) as pg.CustomTypesConfig['getTypeParser'],
};

/** The static/ directory: beside dist/ when installed, two up from build/src/ in tests. */
function staticDir(): string {
	const here = path.dirname(fileURLToPath(import.meta.url));
	for (const up of ['..', '../..']) {
		const dir = path.resolve(here, up, 'static');
		if (existsSync(path.join(dir, 'dashboard.html')))
			return dir;
	}
	throw new Error(`batchjob dashboard: static/dashboard.html not found near ${here}`);
}

const ASSETS: Record<string, [string, string]> = {
	'/': ['dashboard.html', 'text/html; charset=utf-8'],
	'/dashboard.css': ['dashboard.css', 'text/css; charset=utf-8'],
	'/dashboard.js': ['dashboard.js', 'text/javascript; charset=utf-8'],
};

/** A job id from the URL: digits, within bigint; 400 otherwise. */
function parseId(text: string): string {
	if (!/^\d{1,19}$/.test(text) || BigInt(text) > MAX_BIGINT || BigInt(text) === 0n)
		throw new HttpError(400, `"${text}" is not a job id`);
	return BigInt(text).toString();
}

/** A positive integer query parameter, or the default; 400 when malformed. */
function parsePositive(value: string | null, name: string, dflt: number, max: number): number {
	if (value === null || value === '')
		return dflt;
	if (!/^\d{1,9}$/.test(value) || Number(value) < 1)
		throw new HttpError(400, `${name} must be a positive integer: "${value}"`);
	return Math.min(Number(value), max);
}

function sameSecret(given: string, token: string): boolean {
	const a = Buffer.from(given);
	const b = Buffer.from(token);
	return a.length === b.length && timingSafeEqual(a, b);
}

/** Starts the dashboard; resolves once it listens. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
	const readOnly = options.readOnly ?? false;
	const token = options.token ?? null;
	const tickMs = options.tickMs ?? 1000;
	const snapshotLimit = options.snapshotLimit ?? 200;
	const q = (name: string): string =>
		options.schema !== undefined ? `${quoteIdent(options.schema)}.${name}` : name;
	const dir = staticDir();

	const pool = new pg.Pool({ ...options.connection, max: 5 });
	pool.on('error', () => undefined); /* an idle client lost: the next query gets another */

	async function sql<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
		const res = await pool.query<R>({ text, values, types });
		return res.rows;
	}

	/* ---- reads ---- */

	const PARENT_COLUMNS = `
		p.job_id, p.parent_job_id, p.status,
		p.pending, p.processing, p.completed, p.failed, p.cancelled, p.children,
		p.processed_records, p.total_records, p.percent_done,
		p.records_per_second, p.estimated_finish,
		j.success_count, j.error_count, j.created_by, j.created_at,
		j.started_at, j.completed_at, j.error_details,
		extract(epoch FROM now() - j.created_at)::float8 AS age_seconds,
		CASE WHEN p.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
			THEN greatest(extract(epoch FROM p.estimated_finish - now())::float8, 0)
		END AS eta_seconds`;

	interface ParentFilter {
		status: string | null;
		createdBy: string | null;
		id: string | null;
		before: string | null;
		limit: number;
	}

	function readParents(f: ParentFilter): Promise<pg.QueryResultRow[]> {
		return sql(
			`SELECT ${PARENT_COLUMNS}
			   FROM ${q('batch_job_progress')} p
			   JOIN ${q('batch_jobs')} j ON j.job_id = p.job_id
			  WHERE ($1::text IS NULL OR p.status = $1)
			    AND ($2::text IS NULL OR j.created_by = $2)
			    AND ($3::bigint IS NULL OR p.job_id = $3)
			    AND ($4::bigint IS NULL OR p.job_id < $4)
			  ORDER BY p.job_id DESC
			  LIMIT $5`,
			[f.status, f.createdBy, f.id, f.before, f.limit],
		);
	}

	/*
	 * The snapshot's parents: those of the last snapshot by id, and any
	 * newer than the highest job id of two ticks ago (index range scans on
	 * the primary key), newest first.  `known` is null until the first
	 * full read.
	 */
	let known: string[] | null = null;
	let knownAt = 0;
	let tops: string[] = [];

	async function snapshotParents(): Promise<pg.QueryResultRow[]> {
		const topRows = await sql<{ top: string }>(
			`SELECT coalesce(max(job_id), 0) AS top FROM ${q('batch_jobs')}`);
		const top = topRows[0]?.top ?? '0';
		let rows: pg.QueryResultRow[];
		const low = tops[0];
		if (known === null || low === undefined || Date.now() - knownAt > FULL_READ_MS) {
			rows = await readParents({ status: null, createdBy: null, id: null, before: null, limit: snapshotLimit });
			knownAt = Date.now();
			tops = [top, top];
		} else {
			rows = await sql(
				`SELECT ${PARENT_COLUMNS}
				   FROM ${q('batch_job_progress')} p
				   JOIN ${q('batch_jobs')} j ON j.job_id = p.job_id
				  WHERE p.job_id = ANY ($1::bigint[]) OR p.job_id > $2::bigint
				  ORDER BY p.job_id DESC
				  LIMIT $3`,
				[known, low, snapshotLimit],
			);
			tops = [tops[1] ?? top, top];
		}
		known = rows.map((r) => String(r.job_id));
		return rows;
	}

	/*
	 * Reads of children pages and histograms still running, which a page
	 * asking for the same joins: the pages showing one parent all reload
	 * it on the same snapshot.  A read is forgotten once it is done: no
	 * request gets an answer that was complete before it came.
	 */
	const shared = new Map<string, Promise<unknown>>();
	function sharedRead(key: string, read: () => Promise<unknown>): Promise<unknown> {
		const running = shared.get(key);
		if (running !== undefined)
			return running;
		const value = read();
		shared.set(key, value);
		value.then(() => shared.delete(key), () => shared.delete(key));
		return value;
	}

	async function parents(url: URL): Promise<unknown> {
		const status = url.searchParams.get('status') || null;
		if (status !== null && !STATUSES.includes(status))
			throw new HttpError(400, `unknown status "${status}"`);
		const id = url.searchParams.get('id');
		const before = url.searchParams.get('before');
		return readParents({
			status,
			createdBy: url.searchParams.get('created_by') || null,
			id: id ? parseId(id) : null,
			before: before ? parseId(before) : null,
			limit: parsePositive(url.searchParams.get('limit'), 'limit', 100, MAX_LIMIT),
		});
	}

	/** The parent's child counts; raises 23503/22023 (→ 404/400) for a missing or non-parent job. */
	async function childTotal(id: string): Promise<number> {
		const rows = await sql<{ total: string }>(`SELECT total FROM ${q('batchjob_child_counts')}($1)`, [id]);
		return Number(rows[0]?.total ?? 0);
	}

	async function children(id: string, url: URL): Promise<unknown> {
		const page = parsePositive(url.searchParams.get('page'), 'page', 1, 1e9);
		const total = await childTotal(id);
		const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
		if (page > pages)
			throw new HttpError(404, `page ${page} is past the last page (${pages}) of parent job ${id}`);
		const rows = await sql(
			`SELECT job_id, batch_number, status, attempts, max_attempts,
			        locked_by, locked_until, error_details,
			        processed_records, total_records, success_count, error_count,
			        started_at, completed_at,
			        extract(epoch FROM completed_at - started_at)::float8 AS duration_seconds
			   FROM ${q('batch_jobs')}
			  WHERE parent_job_id = $1
			  ORDER BY batch_number
			  LIMIT $2 OFFSET $3`,
			[id, PAGE_SIZE, (page - 1) * PAGE_SIZE],
		);
		return { parent_job_id: id, page, page_size: PAGE_SIZE, pages, total: String(total), children: rows };
	}

	/* one pass over one parent's finished children, on request only */
	async function durations(id: string): Promise<unknown> {
		await childTotal(id);
		const rows = await sql<{ bucket: number; lo: number; hi: number; n: string }>(
			`WITH d AS (
			     SELECT extract(epoch FROM completed_at - started_at)::float8 AS s
			       FROM ${q('batch_jobs')}
			      WHERE parent_job_id = $1 AND completed_at IS NOT NULL AND started_at IS NOT NULL),
			   r AS (SELECT min(s) AS lo, max(s) AS hi FROM d)
			 SELECT least(width_bucket(d.s, r.lo, r.hi + 1e-9, $2), $2) AS bucket,
			        r.lo, r.hi, count(*) AS n
			   FROM d, r GROUP BY 1, 2, 3 ORDER BY 1`,
			[id, BUCKETS],
		);
		const first = rows[0];
		if (first === undefined)
			return { parent_job_id: id, count: '0', min_seconds: null, max_seconds: null, buckets: [] };
		/* all the same duration: one bucket */
		const n = first.hi > first.lo ? BUCKETS : 1;
		const width = (first.hi - first.lo) / n;
		const buckets = Array.from({ length: n }, (_, i) => ({
			from_seconds: first.lo + i * width,
			to_seconds: first.lo + (i + 1) * width,
			count: '0',
		}));
		let count = 0n;
		for (const r of rows) {
			const b = buckets[Math.min(r.bucket, n) - 1];
			if (b !== undefined)
				b.count = (BigInt(b.count) + BigInt(r.n)).toString();
			count += BigInt(r.n);
		}
		return { parent_job_id: id, count: count.toString(), min_seconds: first.lo, max_seconds: first.hi, buckets };
	}

	/* ---- actions ---- */

	async function act(action: string, id: string | null): Promise<unknown> {
		if (readOnly)
			throw new HttpError(403, 'the dashboard is read-only');
		switch (action) {
			case 'cancel': {
				const rows = await sql<{ n: string }>(`SELECT ${q('batchjob_cancel')}($1) AS n`, [id]);
				return { job_id: id, cancelled: rows[0]?.n ?? '0' };
			}
			case 'retry': {
				const rows = await sql<{ status: string }>(`SELECT status FROM ${q('batchjob_retry')}($1)`, [id]);
				return { job_id: id, status: rows[0]?.status ?? null };
			}
			default: {
				const rows = await sql<{ n: string }>(`SELECT ${q('batchjob_reap')}() AS n`);
				return { reaped: rows[0]?.n ?? '0' };
			}
		}
	}

	/* ---- the live snapshot, shared by every page ---- */

	const streams = new Set<http.ServerResponse>();
	let lastSnapshot: string | null = null;
	let ticking = false;
	let again = false;
	let timer: NodeJS.Timeout | null = null;
	let closed = false;

	function send(res: http.ServerResponse, event: string, data: string): void {
		res.write(`event: ${event}\ndata: ${data}\n\n`);
	}

	/** Reads the snapshot once and sends it to every page when it changed. */
	async function tick(): Promise<void> {
		if (ticking) {
			again = true;
			return;
		}
		ticking = true;
		try {
			do {
				again = false;
				if (streams.size === 0 || closed)
					break;
				let data: string;
				try {
					const rows = await snapshotParents();
					data = JSON.stringify({ parents: rows, read_only: readOnly });
				} catch (err) {
					data = JSON.stringify({ error: (err as Error).message });
				}
				if (data !== lastSnapshot) {
					lastSnapshot = data;
					for (const res of streams)
						send(res, 'parents', data);
				}
			} while (again);
		} finally {
			ticking = false;
		}
	}

	function schedule(): void {
		if (timer === null && !closed)
			timer = setInterval(() => void tick(), tickMs);
	}

	/* the LISTEN connection: reconnects after a loss, ticks on every notification */
	let listener: pg.Client | null = null;
	let listenRetry: NodeJS.Timeout | null = null;
	async function listen(): Promise<void> {
		const c = new pg.Client(options.connection);
		c.on('error', () => undefined);
		c.on('notification', () => void tick());
		c.on('end', () => {
			if (listener === c)
				listener = null;
			if (!closed && listenRetry === null)
				listenRetry = setTimeout(() => {
					listenRetry = null;
					listen().catch(() => undefined);
				}, 1000);
		});
		try {
			await c.connect();
			await c.query(`LISTEN ${CHANNEL_PARENT_DONE}; LISTEN ${CHANNEL_JOBS_AVAILABLE}`);
			listener = c;
			void tick(); /* what happened while we were not listening */
		} catch (err) {
			await c.end().catch(() => undefined);
			throw err;
		}
	}

	/* ---- HTTP ---- */

	function json(res: http.ServerResponse, status: number, body: unknown): void {
		const text = JSON.stringify(body);
		res.writeHead(status, {
			'Content-Type': 'application/json; charset=utf-8',
			'Cache-Control': 'no-store',
		});
		res.end(text);
	}

	function authorized(req: http.IncomingMessage, url: URL): boolean {
		if (token === null)
			return true;
		const h = req.headers.authorization;
		if (h !== undefined && h.startsWith('Bearer ') && sameSecret(h.slice(7), token))
			return true;
		const t = url.searchParams.get('token');
		return t !== null && sameSecret(t, token);
	}

	async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
		const url = new URL(req.url ?? '/', 'http://dashboard');
		if (!authorized(req, url))
			throw new HttpError(401, 'a valid token is required (Authorization: Bearer <token> or ?token=)');
		const method = req.method ?? 'GET';
		const p = url.pathname;

		if (p === '/favicon.ico') {
			res.writeHead(204).end();
			return;
		}
		const asset = ASSETS[p];
		if (asset !== undefined) {
			if (method !== 'GET' && method !== 'HEAD')
				throw new HttpError(405, `${method} is not allowed here`);
			const body = await readFile(path.join(dir, asset[0]));
			res.writeHead(200, {
				'Content-Type': asset[1],
				'Cache-Control': 'no-store',
				'X-Content-Type-Options': 'nosniff',
				'Content-Security-Policy': "default-src 'self'; img-src 'self' data:",
			});
			res.end(method === 'HEAD' ? undefined : body);
			return;
		}

		if (p === '/api/events') {
			if (method !== 'GET')
				throw new HttpError(405, `${method} is not allowed here`);
			res.writeHead(200, {
				'Content-Type': 'text/event-stream',
				'Cache-Control': 'no-store',
				Connection: 'keep-alive',
			});
			res.write('retry: 1000\n\n');
			if (lastSnapshot !== null && timer !== null)
				send(res, 'parents', lastSnapshot);
			streams.add(res);
			const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
			req.on('close', () => {
				clearInterval(ping);
				streams.delete(res);
				if (streams.size === 0 && timer !== null) {
					clearInterval(timer);
					timer = null;
					lastSnapshot = null;
					known = null;
				}
			});
			schedule();
			void tick();
			return;
		}

		const m = /^\/api\/(?:parents\/([^/]+)(?:\/(children|durations|cancel|retry))?|parents|reap|config)$/.exec(p);
		if (m === null)
			throw new HttpError(404, `no such page: ${p}`);
		const [, idText, sub] = m;
		const isAction = p === '/api/reap' || sub === 'cancel' || sub === 'retry';
		if (isAction) {
			if (method !== 'POST')
				throw new HttpError(405, `${method} is not allowed here; use POST`);
			/* a custom header makes a cross-site form or fetch preflight, which we never answer */
			if (req.headers['x-batchjob-dashboard'] === undefined)
				throw new HttpError(403, 'actions need the X-Batchjob-Dashboard header');
			json(res, 200, await act(sub ?? 'reap', idText !== undefined ? parseId(idText) : null));
			return;
		}
		if (method !== 'GET')
			throw new HttpError(405, `${method} is not allowed here`);
		if (p === '/api/config') {
			json(res, 200, { read_only: readOnly, page_size: PAGE_SIZE, snapshot_limit: snapshotLimit });
		} else if (idText === undefined) {
			json(res, 200, await parents(url));
		} else {
			const id = parseId(idText);
			if (sub === 'children') {
				const page = url.searchParams.get('page') ?? '';
				json(res, 200, await sharedRead(`children ${id} ${page}`, () => children(id, url)));
			} else if (sub === 'durations')
				json(res, 200, await sharedRead(`durations ${id}`, () => durations(id)));
			else {
				const rows = await readParents({ status: null, createdBy: null, id, before: null, limit: 1 });
				if (rows[0] === undefined)
					throw new HttpError(404, `parent job ${id} does not exist`, 'P0002');
				json(res, 200, rows[0]);
			}
		}
	}

	const server = http.createServer((req, res) => {
		route(req, res).catch((err: unknown) => {
			if (res.headersSent) {
				res.end();
				return;
			}
			if (err instanceof HttpError) {
				const headers = err.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
				res.writeHead(err.status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
				res.end(JSON.stringify({ error: err.message, code: err.code }));
				return;
			}
			const e = err as { message?: string; code?: unknown; severity?: unknown };
			const code = typeof e.code === 'string' && e.severity !== undefined ? e.code : null;
			const status = code !== null ? STATUS_FOR_SQLSTATE[code] ?? 500 : 500;
			json(res, status, { error: e.message ?? String(err), code });
		});
	});

	await listen();
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => resolve());
	});
	const addr = server.address() as AddressInfo;
	const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

	return {
		url: `http://${host}:${addr.port}/`,
		server,
		close: async () => {
			closed = true;
			if (timer !== null)
				clearInterval(timer);
			if (listenRetry !== null)
				clearTimeout(listenRetry);
			for (const res of streams)
				res.end();
			streams.clear();
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
			const l = listener;
			listener = null;
			await l?.end().catch(() => undefined);
			await pool.end();
		},
	};
}
