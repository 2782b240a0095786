#!/usr/bin/env node
/*
 * src/dashboard.ts - the batchjob-dashboard command:
 *
 *   batchjob-dashboard --database-url postgres://… [--port 8080]
 *                      [--host 127.0.0.1] [--read-only] [--token …]
 *
 * Starts the live progress dashboard (dashboard-server.ts) and runs until
 * SIGINT or SIGTERM.  The token may also come from BATCHJOB_DASHBOARD_TOKEN,
 * which keeps it out of the process list.
 */

import { parseArgs } from 'node:util';

import { startDashboard } from './dashboard-server.js';

const USAGE = `usage: batchjob-dashboard --database-url postgres://user@host/db [--port 8080]
                          [--host 127.0.0.1] [--read-only] [--token TOKEN]`;

async function main(): Promise<void> {
	let values;
	try {
		({ values } = parseArgs({
			options: {
				'database-url': { type: 'string' },
				port: { type: 'string', default: '8080' },
				host: { type: 'string', default: '127.0.0.1' },
				'read-only': { type: 'boolean', default: false },
				token: { type: 'string' },
				help: { type: 'boolean', short: 'h', default: false },
			},
			strict: true,
		}));
	} catch (err) {
		console.error(`${(err as Error).message}\n${USAGE}`);
		process.exit(2);
	}
	if (values.help) {
		console.log(USAGE);
		return;
	}
	const url = values['database-url'] ?? process.env.DATABASE_URL;
	const port = Number(values.port);
	if (url === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
		console.error(USAGE);
		process.exit(2);
	}
	const token = values.token ?? process.env.BATCHJOB_DASHBOARD_TOKEN ?? null;
	const dashboard = await startDashboard({
		connection: { connectionString: url },
		port,
		host: values.host,
		readOnly: values['read-only'],
		token: token === '' ? null : token,
	});
	console.log(`batchjob dashboard on ${dashboard.url}${values['read-only'] ? ' (read-only)' : ''}`);
	const stop = (): void => {
		dashboard.close().then(() => process.exit(0), () => process.exit(1));
	};
	process.once('SIGINT', stop);
	process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
	console.error(`batchjob-dashboard: ${(err as Error).message}`);
	process.exit(1);
});
