/*-------------------------------------------------------------------------
 *
 * src/status.c
 *	  The five job statuses and the rules that give a parent its status
 *	  from its children's (README, "Parent status").  The row guard
 *	  (src/rollup.c) applies them to every parent row written, whoever
 *	  writes it, so this is the one place they are stated.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "batchjob.h"

const char *const job_status_names[JOB_NSTATUS] = {
	"PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"
};

/*
 * Maps a status column value to its JobStatus.  The table's CHECK constraint
 * makes an unknown value impossible in a stored row, so one is an internal
 * error here.
 */
JobStatus
job_status_from_datum(Datum d, int64 job_id)
{
	text	   *t = DatumGetTextPP(d);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	int			i;

	for (i = 0; i < JOB_NSTATUS; i++)
	{
		if (strlen(job_status_names[i]) == (size_t) len &&
			memcmp(job_status_names[i], s, len) == 0)
			return (JobStatus) i;
	}
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("job " INT64_FORMAT " has unknown status \"%s\"",
					job_id, text_to_cstring(t)),
			 errhint("A status is one of PENDING, PROCESSING, COMPLETED, FAILED or CANCELLED.")));
	return JOB_PENDING;			/* keep compiler quiet */
}

/*
 * How many children the counters count: JOB_CHILDREN_SQL says the same in
 * the statements, so that C and SQL agree on when a parent has none.
 */
int64
child_counts_total(const ChildCounts *counts)
{
	int64		total = 0;
	int			i;

	for (i = 0; i < JOB_NSTATUS; i++)
		total += counts->n[i];
	return total;
}

/*
 * The status rules for a parent (README, "Parent status").  A parent whose
 * children are not all finished is never finished itself, whatever has
 * failed so far: the reference design got that wrong.  A parent that has
 * started (a child got past PENDING once) stays PROCESSING when its
 * children are all PENDING again, after a retry say.  Under fail_fast, a
 * failed child makes the finished parent FAILED rather than a partial
 * success; the fold cancels the unfinished children to get it there.
 */
JobStatus
derive_parent_status(const ChildCounts *counts, JobStatus current,
					 bool fail_fast, bool started)
{
	int64		total = child_counts_total(counts);

	if (total == 0)
		return current;
	if (counts->n[JOB_PENDING] == total)
		return started ? JOB_PROCESSING : JOB_PENDING;
	if (counts->n[JOB_PENDING] + counts->n[JOB_PROCESSING] > 0)
		return JOB_PROCESSING;
	if (counts->n[JOB_FAILED] == total ||
		(fail_fast && counts->n[JOB_FAILED] > 0))
		return JOB_FAILED;
	if (counts->n[JOB_CANCELLED] == total)
		return JOB_CANCELLED;
	return JOB_COMPLETED;
}

/*
 * error_details of a finished parent: NULL unless some child failed, so
 * that a parent says how much of it failed without reading its children.
 */
char *
parent_failure_message(const ChildCounts *counts)
{
	if (counts->n[JOB_FAILED] == 0)
		return NULL;
	return psprintf(INT64_FORMAT " out of " INT64_FORMAT " batch jobs failed",
					counts->n[JOB_FAILED], child_counts_total(counts));
}
