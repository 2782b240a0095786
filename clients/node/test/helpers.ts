/*
 * test/helpers.ts - a fresh database with the extension for each test
 * file, on the throwaway cluster whose PGHOST, PGPORT and PGUSER the
 * caller exports (test/t/019_node_client.pl); and a poll for
 * states, so no test asserts on timing.
 */

import pg from 'pg';

export interface TestDb {
	database: string;
	/** A pool on the test database (as PGUSER, a superuser). */
	pool: pg.Pool;
	/** Another pool on the test database, ended by close(). */
	newPool(config?: pg.PoolConfig): pg.Pool;
	/** Creates a role (dropped again by close(), after the database). */
	role(name: string, options?: string): Promise<void>;
	/** Runs SQL as the superuser on the test database. */
	sql(text: string, values?: unknown[]): Promise<pg.QueryResult>;
	close(): Promise<void>;
}

const prefix = process.env.BATCHJOB_TEST_DB_PREFIX ?? 'batchjob_node';

async function onPostgres<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
	const c = new pg.Client({ database: 'postgres' });
	await c.connect();
	try {
		return await f(c);
	} finally {
		await c.end();
	}
}

/** Creates (again) the database <prefix>_<name> with the extension. */
export async function testDb(name: string, settings: Record<string, string> = {}): Promise<TestDb> {
	const database = `${prefix}_${name}`;
	await onPostgres(async (c) => {
		await c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
		await c.query(`CREATE DATABASE "${database}"`);
		for (const [k, v] of Object.entries(settings))
			await c.query(`ALTER DATABASE "${database}" SET ${k} = '${v}'`);
	});
	const pools: pg.Pool[] = [];
	const newPool = (config: pg.PoolConfig = {}): pg.Pool => {
		const p = new pg.Pool({ database, max: 10, ...config });
		/* idle clients killed on purpose in some tests: not a crash */
		p.on('error', () => undefined);
		pools.push(p);
		return p;
	};
	const roles: string[] = [];
	const pool = newPool();
	await pool.query('CREATE EXTENSION batchjob');
	return {
		database,
		pool,
		newPool,
		sql: (text, values) => pool.query(text, values),
		role: async (role, options = '') => {
			/* roles are cluster-wide: one left by an earlier run owns nothing here */
			await onPostgres(async (c) => {
				await c.query(`DROP ROLE IF EXISTS "${role}"`);
				await c.query(`CREATE ROLE "${role}" ${options}`);
			});
			roles.push(role);
		},
		close: async () => {
			await Promise.all(pools.map((p) => p.end()));
			await onPostgres(async (c) => {
				await c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
				for (const r of roles)
					await c.query(`DROP ROLE IF EXISTS "${r}"`);
			});
		},
	};
}

/** Polls f until it returns a value that is not undefined/false; fails after timeoutMs. */
export async function eventually<T>(
	f: () => Promise<T | undefined | false> | T | undefined | false,
	what: string,
	timeoutMs = 60_000,
	intervalMs = 25,
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const v = await f();
		if (v !== undefined && v !== false)
			return v;
		if (Date.now() > deadline)
			throw new Error(`timed out waiting for ${what}`);
		await sleep(intervalMs);
	}
}

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A gate handlers wait on (await g.wait) until the test opens it. */
export interface Gate {
	readonly wait: Promise<void>;
	/** whether open() was called */
	readonly opened: boolean;
	open(): void;
}

export function gate(): Gate {
	let opened = false;
	let release: () => void = () => undefined;
	const wait = new Promise<void>((resolve) => {
		release = resolve;
	});
	return {
		wait,
		get opened() {
			return opened;
		},
		open() {
			opened = true;
			release();
		},
	};
}
