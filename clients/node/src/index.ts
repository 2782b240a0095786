/*
 * src/index.ts - the package's entry point: the API (BatchJobs), the worker
 * runner (Worker), the drop-in repository (BatchJobRepository), the error
 * classes and the types.
 */

export {
	BatchJobs,
	CHANNEL_JOBS_AVAILABLE,
	CHANNEL_PARENT_DONE,
	type BatchJobsOptions,
	type ChildrenOptions,
	type ClaimOptions,
	type ClaimRef,
	type CreateChildOptions,
	type CreateParentOptions,
	type FailOptions,
	type Figures,
	type HeartbeatOptions,
	type WaitOptions,
} from './batchjobs.js';
export {
	Worker,
	JobFailure,
	type FailedInfo,
	type Handler,
	type JobContext,
	type JobResult,
	type WorkerEvents,
	type WorkerOptions,
} from './worker.js';
export {
	BatchJobRepository,
	type Int8AsNumber,
	type Int8Mode,
	type NewJob,
	type RepositoryJob,
	type RepositoryOptions,
	type StatusCounts,
} from './repository.js';
export {
	BatchJobError,
	ConflictError,
	InvalidArgumentError,
	JobNotFoundError,
	NotAParentError,
	ParentNotFoundError,
	PermissionError,
	WaitTimeoutError,
	isConnectionError,
	toBatchJobError,
} from './errors.js';
export { types as typeParsers } from './sql.js';
export {
	FINISHED_STATUSES,
	type AccessLevel,
	type BatchJob,
	type ChildCounts,
	type JobId,
	type JobStatus,
	type Lease,
	type OnChildFailure,
	type Progress,
	type Violation,
} from './types.js';
