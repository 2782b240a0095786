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
const TIMESTAMPTZ = 1184;

const parseBigInt = (v: string): bigint => BigInt(v);
/* a one-dimensional int8[] in text form: {1,2,NULL} (no quoting needed) */
const parseBigIntArray = (v: string): (bigint | null)[] =>
	v === '{}' ? [] : v.slice(1, -1).split(',').map((e) => (e === 'NULL' ? null : BigInt(e)));
const parseNumeric = (v: string): number => Number(v);

const parseDateDefault = pg.types.getTypeParser(TIMESTAMPTZ, 'text') as (v: string) => unknown;

/** The digits of v from i to j (exclusive), or -1 when one is not a digit. */
function digits(v: string, i: number, j: number): number {
	let n = 0;
	for (; i < j; i++) {
		const d = v.charCodeAt(i) - 48;
		if (d < 0 || d > 9)
			return -1;
		n = n * 10 + d;
	}
	return n;
}

/*
 * The last timestamps read, text and time: the jobs of one claim mostly
 * share theirs (created by one split, claimed by one statement's now()),
 * so most are found here.  Each read still gets a Date of its own.
 */
const SEEN = 4;
const seenText: string[] = new Array<string>(SEEN).fill('');
const seenTime: number[] = new Array<number>(SEEN).fill(0);
let seenNext = 0;

/** timestamptz as a Date: one seen lately, else parsed (parseTimestamptzText). */
function parseTimestamptz(v: string): unknown {
	for (let i = 0; i < SEEN; i++) {
		if (seenText[i] === v)
			return new Date(seenTime[i]!);
	}
	const d = parseTimestamptzText(v);
	if (d instanceof Date) {
		seenText[seenNext] = v;
		seenTime[seenNext] = d.getTime();
		seenNext = (seenNext + 1) % SEEN;
	}
	return d;
}

/**
 * timestamptz as a Date, the same Date pg's own parser makes, without its
 * regular expressions: a claim returns six per job, and parsing them was
 * the largest single cost of taking up a claimed batch.  Only the form
 * PostgreSQL writes with DateStyle ISO, a four-digit year from 1000 on
 * and an offset (2026-12-02 00:00:46.123456+00, +05:30, -03:00:15) is
 * read here; anything else (infinity, BC, other DateStyles) goes to pg's
 * parser.
 */
function parseTimestamptzText(v: string): unknown {
	const n = v.length;
	if (n < 22 || v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || v.charCodeAt(10) !== 32 ||
		v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58)
		return parseDateDefault(v);
	const year = digits(v, 0, 4);
	const month = digits(v, 5, 7);
	const day = digits(v, 8, 10);
	const hour = digits(v, 11, 13);
	const minute = digits(v, 14, 16);
	const second = digits(v, 17, 19);
	let i = 19;
	let ms = 0;
	if (v.charCodeAt(i) === 46) {
		let j = i + 1;
		while (j < n && v.charCodeAt(j) >= 48 && v.charCodeAt(j) <= 57)
			j++;
		if (j === i + 1)
			return parseDateDefault(v);
		/* as pg's parser has it: 1000 times the fraction, truncated by Date.UTC */
		ms = 1000 * parseFloat(v.slice(i, j));
		i = j;
	}
	/* the offset: +hh, +hh:mm or +hh:mm:ss, and nothing after it */
	const sign = v.charCodeAt(i) === 43 ? 1 : v.charCodeAt(i) === 45 ? -1 : 0;
	const rest = n - i;
	if (sign === 0 || (rest !== 3 && rest !== 6 && rest !== 9) ||
		(rest >= 6 && v.charCodeAt(i + 3) !== 58) || (rest === 9 && v.charCodeAt(i + 6) !== 58))
		return parseDateDefault(v);
	const oh = digits(v, i + 1, i + 3);
	const om = rest >= 6 ? digits(v, i + 4, i + 6) : 0;
	const os = rest === 9 ? digits(v, i + 7, i + 9) : 0;
	if (year < 1000 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || oh < 0 || om < 0 || os < 0)
		return parseDateDefault(v);
	const offset = sign * (oh * 3600 + om * 60 + os) * 1000;
	return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset);
}

/**
 * int8 as bigint (exact past 2^53), numeric as number (batchjob's numerics
 * are percentages and rates rounded to 2 decimals), timestamptz as the
 * Date pg makes (parseTimestamptz), everything else as pg parses it by
 * default (jsonb parsed).
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
			if (oid === TIMESTAMPTZ)
				return parseTimestamptz;
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

/**
 * Job ids as an int8[] parameter, in its text form ({1,2,3}): what pg
 * would send for the array of idParam()s, without quoting each element.
 */
export function idArrayParam(ids: readonly JobId[]): string {
	return '{' + ids.map(idParam).join(',') + '}';
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
