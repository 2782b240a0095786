-- test/t/crash_setup.sql - the crash tests' jobs, audit tables and worker
-- helper, loaded into a fresh database that has the extension.
--
-- Parents (policy; children of n records):
--   A  continue   1500 children of 4
--   B  fail_fast   400 children of 5 (batch 300 fails for good, which
--                  cancels whatever of B is unfinished at that moment)
--   N  continue   root of N1 (continue, 500 children of 5) and
--                 N2 (fail_fast, 300 children of 5, none fails)
-- 2700 leaves in all.  Priorities mix the parents, so that every parent
-- is busy when the crash comes.
--
-- crash_plan says what a worker does with each leaf: 'complete'; 'fail'
-- (for good, no retry); 'flaky' (fails with a retry on its first attempt,
-- then completes).  Every 97th batch of A and N1 fails, every 31st is flaky.
--
-- The audit tables are written in the same transaction as what they record,
-- so that after a crash they say exactly what was committed:
--   crash_claims  one row per claim, in the claim's own statement
--   crash_done    one row per finish (complete or fail, or "lost" when the
--                 job was taken away), in the finish's transaction

\set ON_ERROR_STOP 1

CREATE TABLE crash_parents (
    name text PRIMARY KEY,
    job_id bigint NOT NULL UNIQUE,
    policy text NOT NULL
);

CREATE TABLE crash_plan (
    job_id bigint PRIMARY KEY,
    plan text NOT NULL CHECK (plan IN ('complete', 'fail', 'flaky'))
);

CREATE TABLE crash_claims (
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    worker text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (job_id, attempt)
);

CREATE TABLE crash_done (
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    worker text NOT NULL,
    outcome text NOT NULL,
    done_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ON crash_done (job_id);

INSERT INTO crash_parents
SELECT 'A', job_id, 'continue' FROM batchjob_create_parent('{"crash": "A"}', 'crash');
INSERT INTO crash_parents
SELECT 'B', job_id, 'fail_fast'
FROM batchjob_create_parent('{"crash": "B"}', 'crash', on_child_failure => 'fail_fast');
INSERT INTO crash_parents
SELECT 'N', job_id, 'continue' FROM batchjob_create_parent('{"crash": "N"}', 'crash');
INSERT INTO crash_parents
SELECT 'N' || n, p.job_id, pol
FROM (VALUES (1, 'continue'), (2, 'fail_fast')) AS s (n, pol),
     LATERAL batchjob_create_parent(jsonb_build_object('crash', 'N' || n), 'crash',
                 on_child_failure => pol,
                 parent_job_id => (SELECT job_id FROM crash_parents WHERE name = 'N')) AS p;

INSERT INTO crash_plan
SELECT c.job_id,
       CASE WHEN cp.name = 'B' AND c.batch_number = 300 THEN 'fail'
            WHEN cp.name IN ('A', 'N1') AND c.batch_number % 97 = 0 THEN 'fail'
            WHEN cp.name IN ('A', 'N1') AND c.batch_number % 31 = 0 THEN 'flaky'
            ELSE 'complete' END
FROM crash_parents cp
JOIN (VALUES ('A', 6000, 4), ('B', 2000, 5), ('N1', 2500, 5), ('N2', 1500, 5))
     AS s (name, total, size) USING (name)
CROSS JOIN LATERAL batchjob_split(cp.job_id, s.total, s.size) AS c;

UPDATE batch_jobs SET priority = (job_id * 37) % 7 WHERE NOT is_parent;

/*
 * The second half of a worker's round, in a transaction of its own: report
 * progress, then complete or fail as crash_plan says, naming the worker so
 * that it acts only on a job it still holds, and record the finish in the
 * same transaction.  A job taken away (cancelled by fail_fast, or reaped)
 * raises 55000, recorded as "lost".
 */
CREATE FUNCTION crash_finish(j bigint, att integer, w text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    size bigint;
    what text;
    st text;
    outcome text;
BEGIN
    SELECT b.total_records, p.plan INTO STRICT size, what
      FROM batch_jobs b JOIN crash_plan p USING (job_id)
     WHERE b.job_id = j;
    BEGIN
        IF what = 'fail' THEN
            PERFORM batchjob_progress(j, size, 0, size, worker => w);
            SELECT status INTO st
              FROM batchjob_fail(j, 'crash test: broken batch', retry => false, worker => w);
        ELSIF what = 'flaky' AND att = 1 THEN
            PERFORM batchjob_progress(j, 1, 0, 1, worker => w);
            SELECT status INTO st
              FROM batchjob_fail(j, 'crash test: flaky batch', worker => w);
        ELSE
            PERFORM batchjob_progress(j, size, size - j % 2, j % 2, worker => w);
            SELECT status INTO st FROM batchjob_complete(j, worker => w);
        END IF;
        outcome := lower(st);
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        outcome := 'lost';
    END;
    INSERT INTO crash_done (job_id, attempt, worker, outcome)
    VALUES (j, att, w, outcome);
    RETURN outcome;
END
$$;
