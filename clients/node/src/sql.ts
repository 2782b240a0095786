/*
 * src/sql.ts - how this client talks to PostgreSQL: type parsers scoped to
 * its own queries, parameter conversion, and one query helper that turns
 * server errors into batchjob's error classes.
 *
 * The type parsers are passed with every query (QueryConfig.types), never
 * registered globally with pg.types.setTypeParser, so the application's
 * other queries on the same pool keep whatever parsing they had.
 */

import pg from 'pg';
import type { ClientBase, CustomTypesConfig, Pool, QueryResultRow } from 'pg';

import { toBatchJobError } from './errors.js';
import type { JobId, Lease } from './types.js';

const INT8 = 20;
const INT8_ARRAY = 1016;
const NUMERIC = 1700;

const parseBigInt = (v: string): bigint => BigInt(v);
/* a one-dimensional int8[] in text form: {1,2,NULL} (no quoting needed) */
const parseBigIntArray = (v: string): (bigint | null)[] =>
	v === '{}' ? [] : v.slice(1, -1).split(',').map((e) => (e === 'NULL' ? null : BigInt(e)));
const parseNumeric = (v: string): number => Number(v);

/**
 * int8 as bigint (exact past 2^53), numeric as number (batchjob's numerics
 * are percentages and rates rounded to 2 decimals), everything else as pg
 * parses it by default (timestamptz as Date, jsonb parsed).
 */
export const types: CustomTypesConfig = {
	getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
		if (format === undefined || format === 'text') {
			if (oid === INT8)
				return parseBigInt;
			if (oid === INT8_ARRAY)
				return parseBigIntArray;
			if (oid === NUMERIC)
				return parseNumeric;
		}
		return pg.types.getTypeParser(oid, format ?? 'text');
	}) as CustomTypesConfig['getTypeParser'],
};

/** Something queries can run on: a pool or a checked-out client. */
export type Queryable = Pool | ClientBase;

/** Runs one statement with batchjob's parsers; server errors become classes. */
export async function query<R extends QueryResultRow>(
	db: Queryable,
	text: string,
	values: unknown[] = [],
): Promise<R[]> {
	try {
		const res = await db.query<R>({ text, values, types });
		return res.rows;
	} catch (err) {
		throw toBatchJobError(err);
	}
}

/** A job id as a parameter: its decimal digits. */
export function idParam(id: JobId): string {
	if (typeof id === 'bigint')
		return id.toString();
	if (typeof id === 'number') {
		if (!Number.isSafeInteger(id))
			throw new RangeError(`job id ${id} is not a safe integer; pass a bigint or a string`);
		return String(id);
	}
	if (!/^-?\d+$/.test(id))
		throw new TypeError(`job id "${id}" is not an integer`);
	return id;
}

/** A bigint-valued argument (records, offsets): null stays null. */
export function bigParam(v: bigint | number | null | undefined): string | null {
	if (v === null || v === undefined)
		return null;
	if (typeof v === 'number' && !Number.isSafeInteger(v))
		throw new RangeError(`${v} is not a safe integer; pass a bigint`);
	return v.toString();
}

/** A lease as an interval: milliseconds, or PostgreSQL interval text. */
export function leaseParam(lease: Lease): string {
	if (typeof lease === 'number') {
		if (!Number.isFinite(lease))
			throw new RangeError(`lease ${lease} is not a finite number of milliseconds`);
		return `${lease} milliseconds`;
	}
	return lease;
}

/** A lease in milliseconds, for timers: numbers as they are, text via the server. */
export async function leaseMillis(db: Queryable, lease: Lease): Promise<number> {
	if (typeof lease === 'number')
		return lease;
	const rows = await query<{ ms: number }>(
		db,
		'SELECT (extract(epoch FROM $1::interval) * 1000)::float8 AS ms',
		[lease],
	);
	return rows[0]?.ms ?? 0;
}

/** A SQL identifier, double-quoted. */
export function quoteIdent(name: string): string {
	return '"' + name.replace(/"/g, '""') + '"';
}
