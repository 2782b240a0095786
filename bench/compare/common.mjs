// bench/compare/common.mjs - what graphile.mjs and pgboss.mjs share: the
// command line, the connection (a Unix socket directory or the loopback
// address only), the setup that every run gets before its clock starts,
// and the wait for "all done" in the database.

import pg from "pg";

// node graphile.mjs HOST PORT DATABASE N
export function parseArgs(name) {
	const [host, port, database, n] = process.argv.slice(2);
	if (!host || !port || !database || !n) {
		fail(name, "usage: HOST PORT DATABASE N");
	}
	// Only the bench cluster: its socket directory, or this machine.
	if (!host.startsWith("/") && host !== "127.0.0.1" && host !== "localhost") {
		fail(name, `refusing host ${host}: a socket directory or 127.0.0.1 only`);
	}
	const jobs = Number(n);
	if (!Number.isInteger(jobs) || jobs <= 0) fail(name, `bad N ${n}`);
	return {
		conn: { host, port: Number(port), database, user: process.env.PGUSER || "postgres" },
		jobs,
	};
}

export function fail(name, msg) {
	console.error(`${name}: ${msg}`);
	process.exit(1);
}

// A client of its own, outside the pools the library under test uses.
export async function adminClient(conn) {
	const c = new pg.Client({ ...conn, application_name: "bench-compare-admin" });
	await c.connect();
	return c;
}

// Before the clock starts, every run gets what bench_claim gives batchjob's:
// fresh statistics on the queued jobs and a checkpoint.
export async function settle(admin) {
	await admin.query("ANALYZE");
	await admin.query("CHECKPOINT");
}

// Resolves with performance.now() once `sql` (a count, as "left", of the
// jobs not yet done in the database) answers 0; polls every few ms.
// Called once the handlers have seen every job, so that it only waits for
// the completions still in flight.
export async function waitDone(admin, sql, limitMs) {
	const start = performance.now();
	for (;;) {
		const { rows } = await admin.query(sql);
		const left = Number(rows[0].left);
		if (left === 0) return performance.now();
		if (performance.now() - start > limitMs) {
			throw new Error(`${left} jobs still not done ${limitMs} ms after the last handler`);
		}
		await new Promise((r) => setTimeout(r, 2));
	}
}

// Counts the jobs the handlers saw: add(k) from a handler; `all` resolves
// (with performance.now()) once n were seen, and rejects after limitMs.
export function jobCounter(n, limitMs) {
	const c = { seen: 0, first: undefined };
	let resolve, timer;
	c.all = new Promise((res, rej) => {
		resolve = res;
		timer = setTimeout(() => rej(new Error(`only ${c.seen} of ${n} jobs handled after ${limitMs} ms`)), limitMs);
	});
	c.add = (k) => {
		c.first ??= performance.now();
		c.seen += k;
		if (c.seen >= n) {
			clearTimeout(timer);
			resolve(performance.now());
		}
	};
	return c;
}
