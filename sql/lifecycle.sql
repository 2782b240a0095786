--
-- lifecycle: a worker's calls, from claiming a job to finishing it (1.1),
-- and the claim token that identifies each claim (1.2).
--
-- Every suite starts from an empty table numbering jobs from 1, so its
-- output is the same whichever suites ran before it.  Times are never
-- printed: a lease or a backoff shows as a comparison with now().  Where a
-- lease must have run out, or a backoff have passed, the walkthrough says
-- so with a plain UPDATE as superuser instead of waiting for the clock.
--
TRUNCATE batch_jobs RESTART IDENTITY;

-- an import of 40 records in four batches of 10: parent 1, children 2 to 5
SELECT job_id AS import
  FROM batchjob_create_parent('{"file": "leads.csv"}', 'alice') \gset
SELECT count(*) AS batches FROM batchjob_split(:import, 40, 10);

--
-- batchjob_next_pending()
--

-- the job a worker would claim next (highest priority, then oldest); it
-- only looks, so asking twice gives the same job
SELECT job_id, status, batch_number FROM batchjob_next_pending();
SELECT job_id, status, batch_number FROM batchjob_next_pending();

--
-- batchjob_claim(worker, max_jobs, lease)
--

-- worker-1 claims one job: it is PROCESSING under worker-1, with a lease
-- that ends in 5 minutes (the default), started, and in attempt 1
SELECT job_id, status, locked_by, attempts, max_attempts,
       locked_until > now() AS leased,
       locked_until <= clock_timestamp() + interval '5 minutes' AS within_5_minutes,
       started_at IS NOT NULL AS started
  FROM batchjob_claim('worker-1');

-- worker-2 claims up to two jobs at once, with a lease of 10 minutes; it
-- gets the next two, never worker-1's
SELECT job_id, status, locked_by, attempts,
       locked_until > now() + interval '9 minutes' AS leased_10_minutes
  FROM batchjob_claim('worker-2', max_jobs => 2, lease => '10 minutes');

-- the parent follows its children: PROCESSING, three of four claimed
SELECT status, child_pending, child_processing, started_at IS NOT NULL AS started
  FROM batch_jobs WHERE job_id = :import;

--
-- batchjob_heartbeat(job_id, worker, lease, attempt)
--

-- worker-1 is still at job 2: it extends its lease to 30 minutes from now
SELECT batchjob_heartbeat(2, 'worker-1', '30 minutes') AS extended;
SELECT locked_until > now() + interval '29 minutes' AS leased_30_minutes
  FROM batch_jobs WHERE job_id = 2;

-- the same, naming the claim by its token: the attempts value the claim
-- returned (1.2)
SELECT batchjob_heartbeat(2, 'worker-1', attempt => 1) AS extended;

-- another worker's heartbeat, or one for another attempt, says false and
-- changes nothing: the job is not theirs
SELECT batchjob_heartbeat(2, 'worker-2') AS extended;
SELECT batchjob_heartbeat(2, 'worker-1', attempt => 2) AS extended;

--
-- batchjob_progress(job_id, processed, succeeded, failed, worker, attempt)
--

-- worker-1 has done 6 records of job 2, 5 good and 1 bad; the figures are
-- absolute, so sending the same report again changes nothing
SELECT job_id, status, processed_records, success_count, error_count
  FROM batchjob_progress(2, 6, 5, 1, 'worker-1', 1);
SELECT job_id, status, processed_records, success_count, error_count
  FROM batchjob_progress(2, 6, 5, 1, 'worker-1', 1);

-- they are rolled up to the parent at once
SELECT processed_records, success_count, error_count, total_records
  FROM batch_jobs WHERE job_id = :import;

-- refused (22023): more outcomes than records processed
SELECT batchjob_progress(2, 6, 6, 1, 'worker-1');

-- refused (55000): the job is not worker-2's; nothing changes
SELECT batchjob_progress(2, 10, 10, 0, 'worker-2');

--
-- batchjob_complete(job_id, worker, attempt)
--

-- worker-1 finishes job 2: COMPLETED, the lease given up
SELECT job_id, status, processed_records, locked_by,
       locked_until IS NULL AS lease_cleared,
       completed_at IS NOT NULL AS finished
  FROM batchjob_progress(2, 10, 9, 1, 'worker-1', 1);
SELECT job_id, status, processed_records, locked_by,
       locked_until IS NULL AS lease_cleared,
       completed_at IS NOT NULL AS finished
  FROM batchjob_complete(2, 'worker-1', 1);

-- a finished job cannot be completed again (55000)
SELECT batchjob_complete(2, 'worker-1', 1);

--
-- batchjob_fail(job_id, error_details, retry, worker, attempt)
--

-- worker-2 fails job 3 with retry (the default) in attempt 1 of 3: it goes
-- back to PENDING, unleased, and is not claimable before run_at, 2^0 = 1
-- second times a random factor in [0.5, 1.5) from now
SELECT job_id, status, attempts, max_attempts, error_details, locked_by,
       run_at >= now() + interval '0.5 seconds' AS backed_off,
       run_at < clock_timestamp() + interval '1.5 seconds' AS within_backoff
  FROM batchjob_fail(3, 'upstream timeout', worker => 'worker-2', attempt => 1);

-- a later attempt waits longer (attempt n: 2^(n-1) seconds, at most an
-- hour); as superuser we push this one an hour out, as such a backoff
-- would, so the next two statements do not depend on the machine's speed
UPDATE batch_jobs SET run_at = now() + interval '1 hour' WHERE job_id = 3;

-- while it backs off, job 3 is neither next nor claimed; job 5 is
SELECT job_id FROM batchjob_next_pending();

-- the backoff has passed (run_at set back to now): job 3 is claimable
-- again, and its next claim is attempt 2
UPDATE batch_jobs SET run_at = now() WHERE job_id = 3;
SELECT job_id, status, locked_by, attempts
  FROM batchjob_claim('worker-3', max_jobs => 2) ORDER BY job_id;

-- without retry the failure is final: FAILED with its reason
SELECT job_id, status, attempts, error_details,
       completed_at IS NOT NULL AS finished
  FROM batchjob_fail(3, 'bad input on line 7', retry => false,
                     worker => 'worker-3', attempt => 2);

-- the parent counts one completed, one failed and two processing children
SELECT status, child_pending, child_processing, child_completed,
       child_failed, error_details
  FROM batch_jobs WHERE job_id = :import;

--
-- batchjob_complete(job_ids, worker) and batchjob_fail(job_ids, ...)
--

-- worker-2 still holds job 4, worker-3 job 5.  The array forms change many
-- jobs in one statement and return how many changed.  With a worker, every
-- job must be held by it: here job 5 is worker-3's, so the call is refused
-- (55000) and job 4 is left as it was
SELECT batchjob_complete(ARRAY[4, 5], 'worker-2');
SELECT job_id, status, locked_by FROM batch_jobs WHERE job_id IN (4, 5)
 ORDER BY job_id;

-- each worker completes its own; duplicate and NULL ids are ignored
SELECT batchjob_complete(ARRAY[4, 4, NULL], 'worker-2') AS completed;
SELECT batchjob_complete(ARRAY[5], 'worker-3') AS completed;

-- every batch is finished: the parent is COMPLETED, a partial success
SELECT status, child_completed, child_failed, error_details,
       completed_at IS NOT NULL AS finished
  FROM batch_jobs WHERE job_id = :import;

-- the failing array form: two jobs of a second parent fail for good
SELECT job_id AS export
  FROM batchjob_create_parent('{"file": "export.csv"}', 'alice') \gset
SELECT count(*) AS batches FROM batchjob_split(:export, 20, 10);
SELECT count(*) AS claimed FROM batchjob_claim('worker-4', max_jobs => 2);
SELECT batchjob_fail(ARRAY[7, 8], 'disk full', retry => false,
                     worker => 'worker-4') AS failed;
SELECT status, child_failed, error_details
  FROM batch_jobs WHERE job_id = :export;

--
-- batchjob_retry(job_id)
--

-- retrying a FAILED job puts it back to PENDING with its attempts reset;
-- the finished parent reopens (PROCESSING, completed_at cleared)
SELECT job_id, status, attempts, error_details FROM batchjob_retry(3);
SELECT status, child_pending, child_failed,
       completed_at IS NULL AS reopened
  FROM batch_jobs WHERE job_id = :import;

-- retrying a parent retries every FAILED job below it
SELECT job_id, status FROM batchjob_retry(:export);
SELECT job_id, status, attempts FROM batch_jobs
 WHERE parent_job_id = :export ORDER BY job_id;

-- only a FAILED job can be retried (55000)
SELECT batchjob_retry(2);

--
-- batchjob_cancel(job_id)
--

-- cancelling a job returns 1; cancelling it again finds it finished: 0
SELECT batchjob_cancel(3) AS cancelled;
SELECT batchjob_cancel(3) AS cancelled;

-- cancelling a parent cancels every unfinished job below it
SELECT batchjob_cancel(:export) AS cancelled;
SELECT job_id, status FROM batch_jobs
 WHERE job_id = :export OR parent_job_id = :export ORDER BY job_id;

--
-- batchjob_reap()
--

-- a new job, claimed by worker-5, whose process then dies
INSERT INTO batch_jobs (criteria, created_by, max_attempts)
VALUES ('{"mail": "welcome"}', 'alice', 2);
SELECT job_id, attempts FROM batchjob_claim('worker-5');

-- nothing to reap while the lease runs
SELECT batchjob_reap() AS reaped;

-- its lease runs out (as superuser, instead of waiting 5 minutes): the
-- reaper takes it back to PENDING, since attempts remain
UPDATE batch_jobs SET locked_until = now() - interval '1 second'
 WHERE job_id = 9;
SELECT batchjob_reap() AS reaped;
SELECT status, attempts, locked_by, locked_until IS NULL AS lease_cleared
  FROM batch_jobs WHERE job_id = 9;

--
-- Claim tokens (1.2): a zombie worker cannot finish a later attempt
--

-- worker-5 restarts and claims the job again, under the same name: this
-- is attempt 2
SELECT job_id, locked_by, attempts FROM batchjob_claim('worker-5');

-- the old process, still at attempt 1, is refused (55000); its heartbeat
-- says false
SELECT batchjob_complete(9, 'worker-5', 1);
SELECT batchjob_heartbeat(9, 'worker-5', attempt => 1) AS extended;

-- attempt 2 dies too; with no attempts left, the reaper fails the job
UPDATE batch_jobs SET locked_until = now() - interval '1 second'
 WHERE job_id = 9;
SELECT batchjob_reap() AS reaped;
SELECT status, attempts, error_details
  FROM batch_jobs WHERE job_id = 9;

--
-- on_child_failure => 'fail_fast'
--

-- the first child that fails for good cancels its unfinished siblings,
-- and the parent ends FAILED
SELECT job_id AS strict
  FROM batchjob_create_parent('{"file": "ledger.csv"}', 'alice',
                              on_child_failure => 'fail_fast') \gset
SELECT count(*) AS batches FROM batchjob_split(:strict, 30, 10);
SELECT job_id FROM batchjob_claim('worker-6');
SELECT job_id, status FROM batchjob_fail(11, 'checksum mismatch', retry => false,
                                         worker => 'worker-6');
SELECT job_id, status, error_details FROM batch_jobs
 WHERE job_id = :strict OR parent_job_id = :strict ORDER BY job_id;

-- every invariant holds
SELECT * FROM batchjob_verify();
