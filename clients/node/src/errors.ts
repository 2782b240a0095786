/*
 * src/errors.ts - the server's errors as classes.
 *
 * Every error a batchjob function raises carries a SQLSTATE; the classes
 * below follow the error table of the extension's README.  Each keeps the
 * server's message, detail, hint and code, and the original error as
 * `cause`.  Errors that are not the server's (a dropped connection, say)
 * are passed through unchanged.
 */

/** What a PostgreSQL error from node-postgres carries that we keep. */
interface ServerErrorFields {
	message: string;
	code?: string | undefined;
	detail?: string | undefined;
	hint?: string | undefined;
}

/** The base class: any error the server raised while batchjob ran. */
export class BatchJobError extends Error {
	/** The SQLSTATE, e.g. '55000'. */
	readonly code: string | undefined;
	readonly detail: string | undefined;
	readonly hint: string | undefined;
	/** The job the message names ("job 42 …"), when it names one. */
	readonly jobId: bigint | undefined;

	constructor(fields: ServerErrorFields, options?: { cause?: unknown }) {
		super(fields.message, options);
		this.name = new.target.name;
		this.code = fields.code;
		this.detail = fields.detail;
		this.hint = fields.hint;
		const m = /\bjob (\d+)/.exec(fields.message);
		this.jobId = m?.[1] !== undefined ? BigInt(m[1]) : undefined;
	}
}

/** P0002: a worker or operator function was given a job that does not exist. */
export class JobNotFoundError extends BatchJobError {}

/**
 * 22023 "job N is not a parent job": a job named as a parent is not one.
 * Its subclass ParentNotFoundError is 23503, a parent that does not exist.
 */
export class NotAParentError extends BatchJobError {}

/** 23503: the parent named does not exist ("parent job 42 does not exist"). */
export class ParentNotFoundError extends NotAParentError {}

/**
 * A value the server refused: 22023 (out of range, a parent given to a
 * worker function, a cycle), 22004 (a required argument is NULL), 22003
 * (too many batches, a sum past bigint), 22008 (a lease past the timestamp
 * range), 23514 (negative figures, processed above total).
 */
export class InvalidArgumentError extends BatchJobError {}

/**
 * 55000: the job is not in the state the call needs (not PROCESSING, held
 * by another claim, not FAILED, already split, …); 23505: a duplicate
 * batch_number.  From heartbeat/progress/complete/fail it means "this job
 * is no longer yours".
 */
export class ConflictError extends BatchJobError {}

/** 42501: the role may not make this call, or may not see this tenant's job. */
export class PermissionError extends BatchJobError {}

/** waitForParent gave up after its timeoutMs. */
export class WaitTimeoutError extends BatchJobError {}

function isServerError(err: unknown): err is ServerErrorFields & Error {
	return (
		err instanceof Error &&
		typeof (err as { code?: unknown }).code === 'string' &&
		/* a DatabaseError from pg-protocol; network errors have codes like ECONNRESET */
		(err as { severity?: unknown }).severity !== undefined
	);
}

/** The class for one server error (SQLSTATE and message). */
function classFor(code: string, message: string): typeof BatchJobError {
	switch (code) {
		case 'P0002':
			return JobNotFoundError;
		case '23503':
			return ParentNotFoundError;
		case '22023':
			return /is not a parent job/.test(message)
				? NotAParentError
				: InvalidArgumentError;
		case '22004':
		case '22003':
		case '22008':
		case '23514':
			return InvalidArgumentError;
		case '55000':
		case '23505':
			return ConflictError;
		case '42501':
			return PermissionError;
		default:
			return BatchJobError;
	}
}

/**
 * Turns a server error into its class; anything else (a connection error, a
 * programming error) is returned unchanged.
 */
export function toBatchJobError(err: unknown): unknown {
	if (err instanceof BatchJobError || !isServerError(err))
		return err;
	const Cls = classFor(err.code ?? '', err.message);
	return new Cls(
		{ message: err.message, code: err.code, detail: err.detail, hint: err.hint },
		{ cause: err },
	);
}

/**
 * Whether an error means the connection was lost (and the statement may or
 * may not have committed), so the call is worth making again on another
 * connection: a server shutting the session down (57P01-57P03, 08xxx) or a
 * socket error from the client.
 */
export function isConnectionError(err: unknown): boolean {
	if (!(err instanceof Error))
		return false;
	const e = err instanceof BatchJobError && err.cause instanceof Error ? err.cause : err;
	const code = (e as { code?: unknown }).code;
	if (typeof code === 'string') {
		if (/^57P0[1-3]$/.test(code) || code.startsWith('08'))
			return true;
		if (['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN', 'ENOENT'].includes(code))
			return true;
	}
	return /Connection terminated|Client has encountered a connection error|Client was closed|connection timeout|timeout exceeded when trying to connect|not queryable/i.test(e.message);
}
