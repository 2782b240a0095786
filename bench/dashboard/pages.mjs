// bench/dashboard/pages.mjs - N open dashboard pages, as bench/run's
// benchmark 12 needs them (issue 14): each does what
// clients/node/static/dashboard.js does in a browser, without the
// rendering.  On load: the page, its CSS and script, /api/config and
// /api/parents? (loadFiltered with no filter), then the event stream
// /api/events, held open.  With "children", page i also opens the i-th
// parent given (as a click on it does): its first children page and its
// durations, and the children page again at most once a second, after the
// last change, whenever a snapshot shows that parent's processed_records,
// status, processing or failed changed (reloadChildrenSoon), with the
// durations when the last were read 10 s ago or more, or were empty.
//
// node pages.mjs URL N list|children SECONDS [PARENT_ID...]
// Prints "ready" once every page has loaded and holds its event stream;
// runs SECONDS (or until SIGTERM), then prints one line more:
// "pages N events E requests R" (snapshots received, API requests made).

import http from "node:http";

const [url, n, mode, seconds, ...parents] = process.argv.slice(2);
const base = new URL(url);
if (base.hostname !== "127.0.0.1" && base.hostname !== "localhost") {
	console.error(`pages.mjs: refusing ${url}: the dashboard on this machine only`);
	process.exit(1);
}
const N = Number(n);
if (!Number.isInteger(N) || N < 1 || !["list", "children"].includes(mode)) {
	console.error("usage: pages.mjs URL N list|children SECONDS [PARENT_ID...]");
	process.exit(1);
}
if (mode === "children" && parents.length === 0) {
	console.error("pages.mjs: children needs parent ids");
	process.exit(1);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 * N });
let events = 0;
let requests = 0;
let failures = 0;
const streams = [];
const timers = new Set();

// one GET, body read and dropped (or parsed, for JSON)
function get(path, json = false) {
	requests++;
	return new Promise((resolve, reject) => {
		http.get(new URL(path, base), { agent }, (res) => {
			let body = "";
			res.setEncoding("utf8");
			res.on("data", (d) => { body += d; });
			res.on("end", () => {
				if (res.statusCode !== 200) {
					failures++;
					reject(new Error(`${path}: HTTP ${res.statusCode} ${body}`));
					return;
				}
				resolve(json ? JSON.parse(body) : body.length);
			});
		}).on("error", reject);
	});
}

async function page(i) {
	await Promise.all(["/", "/dashboard.css", "/dashboard.js"].map((p) => get(p)));
	await get("/api/config", true);
	await get("/api/parents?", true);
	const open = mode === "children" ? parents[i % parents.length] : null;
	let last = null;
	let childTimer = null;
	let childReload = 0;
	let histAt = 0;
	const loadChildren = async (live) => {
		childReload = Date.now();
		const withHist = !live || histAt === 0 || Date.now() - histAt >= 10000;
		const [, hist] = await Promise.all([
			get(`/api/parents/${open}/children?page=1`, true),
			withHist ? get(`/api/parents/${open}/durations`, true) : null,
		]);
		if (hist !== null) histAt = hist.buckets.length > 0 ? Date.now() : 0;
	};
	if (open !== null) await loadChildren(false);
	const reloadChildrenSoon = () => {
		if (childTimer !== null) return;
		childTimer = setTimeout(() => {
			timers.delete(childTimer);
			childTimer = null;
			loadChildren(true).catch((e) => console.error(`pages.mjs: ${e.message}`));
		}, Math.max(0, 1000 - (Date.now() - childReload)));
		timers.add(childTimer);
	};
	// the event stream: "event: parents\ndata: {...}\n\n"
	await new Promise((resolve, reject) => {
		const req = http.get(new URL("/api/events", base), { agent }, (res) => {
			if (res.statusCode !== 200) { failures++; reject(new Error(`events: HTTP ${res.statusCode}`)); return; }
			resolve();
			let buf = "";
			res.setEncoding("utf8");
			res.on("data", (d) => {
				buf += d;
				let k;
				while ((k = buf.indexOf("\n\n")) >= 0) {
					const msg = buf.slice(0, k);
					buf = buf.slice(k + 2);
					const ev = /^event: (.*)$/m.exec(msg)?.[1];
					const data = /^data: (.*)$/m.exec(msg)?.[1];
					if (ev !== "parents" || data === undefined) continue;
					events++;
					if (open === null) continue;
					const p = JSON.parse(data).parents.find((x) => x.job_id === open);
					if (p === undefined) continue;
					if (last !== null && (last.processed_records !== p.processed_records || last.status !== p.status ||
						last.processing !== p.processing || last.failed !== p.failed)) reloadChildrenSoon();
					last = p;
				}
			});
		});
		req.on("error", reject);
		streams.push(req);
	});
}

function finish() {
	for (const t of timers) clearTimeout(t);
	for (const s of streams) s.destroy();
	agent.destroy();
	console.log(`pages ${N} events ${events} requests ${requests}`);
	process.exit(failures > 0 ? 1 : 0);
}

process.on("SIGTERM", finish);
setTimeout(finish, Number(seconds) * 1000);
try {
	await Promise.all(Array.from({ length: N }, (_, i) => page(i)));
	console.log("ready");
} catch (e) {
	console.error(`pages.mjs: ${e.message}`);
	process.exit(1);
}
