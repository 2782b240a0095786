// bench/compare/common.mjs - what graphile.mjs and pgboss.mjs share: the
// command line, the connection (a Unix socket directory or the loopback
// address only), the setup that every run gets before its clock starts,
// and the wait for "all done" in the database.

import pg from "pg";
import { readFileSync, readdirSync } from "node:fs";

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

// The fields of /proc/PID/stat after "pid (comm) ": 0 state, 1 ppid,
// 11 utime, 12 stime, 13 cutime, 14 cstime (in ticks of 1/100 s on Linux).
function procStat(pid) {
	const line = readFileSync(`/proc/${pid}/stat`, "utf8");
	return line.slice(line.lastIndexOf(")") + 2).split(" ");
}

// CPU time (µs, user + system) of a cluster on this machine: its
// postmaster's live children (backends, walwriter, checkpointer, the
// folder) and those it has reaped.  The same sum as bench_cluster_cpu in
// bench/lib.sh, taken here because the timed window is known only here.
function clusterCpuUs(postmaster) {
	const pm = procStat(postmaster);
	let ticks = Number(pm[11]) + Number(pm[12]) + Number(pm[13]) + Number(pm[14]);
	for (const d of readdirSync("/proc")) {
		if (!/^[0-9]+$/.test(d) || d === postmaster) continue;
		let f;
		try { f = procStat(d); } catch { continue; }	// gone meanwhile
		if (f[1] === postmaster) ticks += Number(f[11]) + Number(f[12]);
	}
	return ticks * 1e4;
}

// Where a run's CPU went: start() when the clock starts; report(name,
// jobs) when it stops prints a line "NAME:cpu CLUSTER NODE": the CPU (µs)
// per job of the cluster `admin` is connected to and of this Node process
// (process.cpuUsage).  The cluster's is read from /proc, "-" where /proc
// does not show it.  A backend's CPU counts while it lives and once it has
// exited, so it does not matter when the pools close.
export async function cpuMeter(admin) {
	const { rows: [r] } = await admin.query("SELECT pg_backend_pid() AS pid");
	let postmaster = null;
	try {
		postmaster = procStat(r.pid)[1];
	} catch {
		// a cluster on another machine, or in another PID namespace
	}
	let server0, node0;
	return {
		start() {
			server0 = postmaster && clusterCpuUs(postmaster);
			node0 = process.cpuUsage();
		},
		report(name, jobs) {
			const n = process.cpuUsage(node0);
			const node = ((n.user + n.system) / jobs).toFixed(1);
			const server = postmaster ? ((clusterCpuUs(postmaster) - server0) / jobs).toFixed(1) : "-";
			console.log(`${name}:cpu ${server} ${node}`);
		},
	};
}
