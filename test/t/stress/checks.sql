-- test/t/stress/checks.sql - what the stress test asserts once every job is
-- finished.  Prints one line per check: the number of offending rows
-- (0 means the check passed), a tab, the description, a tab, and the first
-- offending row.  014_stress.pl makes each one a test.  Every check reads the
-- tables as the run left them; the last one then repairs every parent with
-- batchjob_refresh_parent() and checks that nothing changed.
--

\set ON_ERROR_STOP 1

-- the leaves, with their parent's name and policy, and what the worker's
-- rules (setup.sql) make of them
CREATE TEMP VIEW leaves AS
SELECT j.job_id, j.status, j.attempts, j.total_records AS size,
       j.processed_records AS processed, j.success_count AS success,
       j.error_count AS errors, j.error_details, j.locked_by,
       p.name AS pname, p.policy, k.crashes,
       CASE WHEN j.job_id % 97 = 0 THEN 'FAILED'
            WHEN j.job_id % 89 = 0 THEN 'FAILED'
            ELSE 'COMPLETED' END AS want_status,
       CASE WHEN j.job_id % 97 = 0 THEN 1 + k.crashes
            WHEN j.job_id % 89 = 0 THEN 3
            WHEN j.job_id % 53 = 0 THEN 2
            ELSE 1 + k.crashes END AS want_attempts,
       CASE WHEN j.job_id % 97 = 0 THEN j.total_records / 2
            WHEN j.job_id % 89 = 0 THEN 1
            ELSE j.total_records END AS want_processed,
       CASE WHEN j.job_id % 97 = 0 THEN 0
            WHEN j.job_id % 89 = 0 THEN 0
            ELSE j.total_records - least(j.job_id % 3, j.total_records)
       END AS want_success,
       CASE WHEN j.job_id % 97 = 0 THEN j.total_records / 2
            WHEN j.job_id % 89 = 0 THEN 1
            ELSE least(j.job_id % 3, j.total_records) END AS want_errors
FROM batch_jobs j
JOIN stress_parents p ON p.job_id = j.parent_job_id
CROSS JOIN LATERAL (
    SELECT count(*) AS crashes FROM stress_claims c
    WHERE c.job_id = j.job_id AND c.worker = 'crashed') k
WHERE NOT j.is_parent;

-- each parent's figures counted and summed directly over its children
CREATE TEMP VIEW parent_sums AS
SELECT p.job_id,
       count(c.*) FILTER (WHERE c.status = 'PENDING') AS pend,
       count(c.*) FILTER (WHERE c.status = 'PROCESSING') AS proc,
       count(c.*) FILTER (WHERE c.status = 'COMPLETED') AS done,
       count(c.*) FILTER (WHERE c.status = 'FAILED') AS failed,
       count(c.*) FILTER (WHERE c.status = 'CANCELLED') AS cancelled,
       count(c.*) AS children,
       coalesce(sum(c.total_records), 0) AS total,
       coalesce(sum(c.processed_records), 0) AS processed,
       coalesce(sum(c.success_count), 0) AS success,
       coalesce(sum(c.error_count), 0) AS errors
FROM batch_jobs p
LEFT JOIN batch_jobs c ON c.parent_job_id = p.job_id
WHERE p.is_parent
GROUP BY p.job_id;

CREATE TEMP VIEW claim_finish AS
SELECT c.job_id, c.attempt, c.worker, c.claimed_at, c.lease_until,
       f.worker AS finish_worker, f.outcome, f.finished_at,
       (SELECT count(*) FROM stress_finishes f2
        WHERE f2.job_id = c.job_id AND f2.attempt = c.attempt) AS finishes
FROM stress_claims c
LEFT JOIN stress_finishes f ON f.job_id = c.job_id AND f.attempt = c.attempt;

\pset format unaligned
\pset tuples_only on
\pset fieldsep '\t'

WITH checks (ord, description, bad, example) AS (
    SELECT 1, 'every leaf job is finished (none PENDING or PROCESSING)',
           count(*), min(job_id || ' ' || status)
    FROM batch_jobs
    WHERE NOT is_parent AND status IN ('PENDING', 'PROCESSING')
UNION ALL
    SELECT 2, 'batchjob_reap() took back exactly the 5 abandoned claims, each job once, and no other lease expired',
           abs((SELECT coalesce(sum(reaped), 0) FROM stress_reaps) - 5)
           + abs(count(DISTINCT c.job_id) - 5)
           + count(*) FILTER (WHERE j.error_details LIKE 'lease of worker%'),
           'reaped ' || (SELECT coalesce(sum(reaped), 0) FROM stress_reaps)
           || ', abandoned ' || count(DISTINCT c.job_id)
    FROM batch_jobs j
    LEFT JOIN stress_claims c ON c.job_id = j.job_id AND c.worker = 'crashed'
    WHERE c.job_id IS NOT NULL OR j.error_details LIKE 'lease of worker%'
UNION ALL
    SELECT 3, 'each (job_id, attempt) was claimed once, and every leaf''s attempts are its claims numbered 1..n',
           count(*), min(l.job_id || ': attempts ' || l.attempts || ', claims '
                         || coalesce(s.n, 0) || ', highest ' || coalesce(s.hi, 0))
    FROM leaves l
    LEFT JOIN (SELECT job_id, count(*) AS n, count(DISTINCT attempt) AS nd,
                      max(attempt) AS hi, min(attempt) AS lo
               FROM stress_claims GROUP BY job_id) s USING (job_id)
    WHERE coalesce(s.n, 0) <> l.attempts OR coalesce(s.nd, 0) <> l.attempts
       OR coalesce(s.hi, 0) <> l.attempts OR coalesce(s.lo, 1) <> 1
UNION ALL
    SELECT 4, 'every claim was finished exactly once, by the worker that claimed it (the abandoned ones never)',
           count(*), min(job_id || '/' || attempt || ' by ' || worker || ': '
                         || finishes || ' finishes, by ' || coalesce(finish_worker, '-'))
    FROM claim_finish
    WHERE CASE WHEN worker = 'crashed' THEN finishes <> 0
               ELSE finishes <> 1 OR finish_worker IS DISTINCT FROM worker END
UNION ALL
    SELECT 5, 'no finish without a claim',
           count(*), min(f.job_id || '/' || f.attempt)
    FROM stress_finishes f
    WHERE NOT EXISTS (SELECT 1 FROM stress_claims c
                      WHERE c.job_id = f.job_id AND c.attempt = f.attempt)
UNION ALL
    SELECT 6, 'no job was held by two workers at once (each claim follows the previous attempt''s finish, or its lease''s end)',
           count(*), min(a.job_id || ': attempt ' || a.attempt || ' held until '
                         || coalesce(a.finished_at, a.lease_until)
                         || ', attempt ' || b.attempt || ' claimed ' || b.claimed_at)
    FROM claim_finish a
    JOIN claim_finish b ON b.job_id = a.job_id AND b.attempt > a.attempt
    WHERE b.claimed_at <= coalesce(a.finished_at, a.lease_until)
       OR a.finished_at < a.claimed_at
UNION ALL
    SELECT 7, 'every attempt but the last was retried or abandoned, and the last one''s outcome is the job''s status',
           count(*), min(job_id || '/' || attempt || ': '
                         || coalesce(outcome, worker) || ' but ' || status)
    FROM (SELECT cf.job_id, cf.attempt, cf.worker, cf.outcome, l.status,
                 cf.attempt = l.attempts AS last
          FROM claim_finish cf JOIN leaves l USING (job_id)) x
    WHERE NOT CASE WHEN NOT last THEN outcome = 'pending'
                                      OR (worker = 'crashed' AND outcome IS NULL)
                   WHEN status = 'COMPLETED' THEN outcome = 'completed'
                   WHEN status = 'FAILED' THEN outcome = 'failed'
                   WHEN status = 'CANCELLED' THEN outcome = 'pending'
                                               OR outcome LIKE 'lost: %'
                   ELSE false END
UNION ALL
    SELECT 8, 'leaves under continue parents: status, attempts and figures exactly as the worker rules say',
           count(*), min(job_id || ' (' || pname || '): ' || status || '/'
                         || attempts || ' ' || processed || '/' || success
                         || '/' || errors || ', want ' || want_status || '/'
                         || want_attempts || ' ' || want_processed || '/'
                         || want_success || '/' || want_errors)
    FROM leaves
    WHERE policy = 'continue'
      AND (status, attempts, processed, success, errors)
          IS DISTINCT FROM (want_status, want_attempts, want_processed,
                            want_success, want_errors)
UNION ALL
    SELECT 9, 'leaves under fail_fast parents: each FAILED or COMPLETED one as the rules say, the rest CANCELLED',
           count(*), min(job_id || ' (' || pname || '): ' || status || '/'
                         || attempts || ', want ' || want_status || '/'
                         || want_attempts)
    FROM leaves
    WHERE policy = 'fail_fast'
      AND NOT (status = 'CANCELLED'
               OR (status, attempts, processed, success, errors)
                  IS NOT DISTINCT FROM (want_status, want_attempts,
                                        want_processed, want_success,
                                        want_errors))
UNION ALL
    SELECT 10, 'every parent''s stored counters and sums equal a count and sum over its children',
           count(*), min(p.job_id::text)
    FROM batch_jobs p JOIN parent_sums s USING (job_id)
    WHERE (p.child_pending, p.child_processing, p.child_completed,
           p.child_failed, p.child_cancelled, p.total_records,
           p.processed_records, p.success_count, p.error_count)
          IS DISTINCT FROM (s.pend, s.proc, s.done, s.failed, s.cancelled,
                            s.total, s.processed, s.success, s.errors)
UNION ALL
    SELECT 11, 'continue parents A, B, D1, D2: COMPLETED with the exact partial-failure message',
           count(*), min(sp.name || ': ' || p.status || ' '
                         || coalesce(p.error_details, '(null)'))
    FROM stress_parents sp
    JOIN batch_jobs p USING (job_id)
    JOIN parent_sums s USING (job_id)
    WHERE sp.name IN ('A', 'B', 'D1', 'D2')
      AND NOT (p.status = 'COMPLETED' AND s.failed > 0 AND s.cancelled = 0
               AND p.error_details = s.failed || ' out of ' || s.children
                                     || ' batch jobs failed')
UNION ALL
    SELECT 12, 'fail_fast parents C, D3: FAILED, the rest of their children cancelled, exact message',
           count(*), min(sp.name || ': ' || p.status || ' failed ' || s.failed
                         || ' cancelled ' || s.cancelled || ' '
                         || coalesce(p.error_details, '(null)'))
    FROM stress_parents sp
    JOIN batch_jobs p USING (job_id)
    JOIN parent_sums s USING (job_id)
    WHERE sp.name IN ('C', 'D3')
      AND NOT (p.status = 'FAILED' AND s.failed > 0 AND s.cancelled > 0
               AND p.error_details = s.failed || ' out of ' || s.children
                                     || ' batch jobs failed')
UNION ALL
    SELECT 13, 'nested root D reflects its sub-parents: COMPLETED, 1 out of 3 failed (D3), sums over every leaf below it',
           count(*), min(p.status || ' ' || coalesce(p.error_details, '(null)')
                         || ' ' || p.processed_records || '/' || p.success_count
                         || '/' || p.error_count || ' vs ' || l.processed
                         || '/' || l.success || '/' || l.errors)
    FROM stress_parents sp
    JOIN batch_jobs p USING (job_id)
    CROSS JOIN (SELECT sum(processed) AS processed, sum(success) AS success,
                       sum(errors) AS errors, sum(size) AS total
                FROM leaves WHERE pname LIKE 'D_') l
    WHERE sp.name = 'D'
      AND NOT (p.status = 'COMPLETED'
               AND p.error_details = '1 out of 3 batch jobs failed'
               AND p.child_completed = 2 AND p.child_failed = 1
               AND (p.total_records, p.processed_records, p.success_count,
                    p.error_count)
                   = (l.total, l.processed, l.success, l.errors))
UNION ALL
    SELECT 14, 'each root''s total_records is what was split (A 5999, B 6000, C 3000, D 9000)',
           count(*), min(sp.name || ': ' || p.total_records)
    FROM stress_parents sp
    JOIN batch_jobs p USING (job_id)
    JOIN (VALUES ('A', 5999), ('B', 6000), ('C', 3000), ('D', 9000))
         AS t (name, total) USING (name)
    WHERE p.total_records IS DISTINCT FROM t.total
UNION ALL
    SELECT 15, 'every parent is finished, with completed_at set, and batch_job_progress (stored plus waiting differences) agrees',
           count(*), min(p.job_id || ' ' || p.status)
    FROM batch_jobs p
    LEFT JOIN batch_job_progress v USING (job_id)
    WHERE p.is_parent
      AND (p.status NOT IN ('COMPLETED', 'FAILED') OR p.completed_at IS NULL
           OR v.job_id IS NULL OR v.status <> p.status
           OR v.children <> p.child_pending + p.child_processing
                            + p.child_completed + p.child_failed
                            + p.child_cancelled
           OR v.estimated_finish IS DISTINCT FROM p.completed_at)
UNION ALL
    SELECT 16, 'no rollup difference is left in batch_job_deltas',
           count(*), min(parent_job_id::text)
    FROM batch_job_deltas
)
SELECT bad, description, coalesce(example, '') FROM checks ORDER BY ord;

-- Each parent as stored, then batchjob_refresh_parent() on every parent,
-- sub-parents before their roots, then each parent again: the same.
CREATE TEMP TABLE parents_before AS
SELECT job_id, status, error_details, total_records, processed_records,
       success_count, error_count, child_pending, child_processing,
       child_completed, child_failed, child_cancelled,
       completed_at IS NOT NULL AS finished
FROM batch_jobs WHERE is_parent;

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT job_id FROM batch_jobs WHERE is_parent
             ORDER BY parent_job_id IS NULL, job_id
    LOOP
        PERFORM batchjob_refresh_parent(r.job_id);
    END LOOP;
END
$$;

CREATE TEMP TABLE parents_after AS
SELECT job_id, status, error_details, total_records, processed_records,
       success_count, error_count, child_pending, child_processing,
       child_completed, child_failed, child_cancelled,
       completed_at IS NOT NULL AS finished
FROM batch_jobs WHERE is_parent;

SELECT count(*), 'batchjob_refresh_parent() changes nothing on any parent',
       coalesce(min(job_id::text), '')
FROM ((TABLE parents_before EXCEPT TABLE parents_after)
      UNION ALL
      (TABLE parents_after EXCEPT TABLE parents_before)) d;
