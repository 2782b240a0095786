-- test/t/stress/setup.sql - the stress test's jobs, audit tables and worker
-- helper, loaded into a fresh database that has the extension.
--
-- Parents (policy; children):
--   A  continue   1500 children of 4 records (5999 records, last batch 3)
--   B  continue   1200 children of 5 records
--   C  fail_fast  1000 children of 3 records
--   D  continue   root of three sub-parents, each 600 children of 5:
--      D1 continue, D2 continue, D3 fail_fast
-- 5500 children in all.  Children get a priority from their job_id, so
-- that claims hop between parents instead of draining one after another.
--
-- A worker's outcome for a job depends only on its job_id and attempt:
--   job_id % 97 = 0           fails for good on its first attempt
--   job_id % 89 = 0           fails on every attempt, with retry, so it is
--                             FAILED once its 3 attempts are used
--   job_id % 53 = 0           fails on attempt 1 (with retry), then succeeds
--   otherwise                 succeeds on attempt 1
-- Under a fail_fast parent, the first final failure cancels the rest; a
-- worker holding a cancelled job finds out from its heartbeat or with
-- SQLSTATE 55000, and records the attempt as lost.
--
-- Before the workers start, a worker named "crashed" claims five jobs
-- under a 2-second lease and never finishes them: batchjob_reap(), which
-- the workers call now and then, must take exactly those back, and other
-- workers then finish them (one attempt more than the rules above say).

\set ON_ERROR_STOP 1

CREATE TABLE stress_parents (
    name text PRIMARY KEY,
    job_id bigint NOT NULL UNIQUE,
    policy text NOT NULL,
    parent_name text REFERENCES stress_parents (name)
);

-- one row per claim, written in the claim's own statement
CREATE TABLE stress_claims (
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    worker text NOT NULL,
    lease_until timestamptz NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (job_id, attempt)
);

-- one row per finish (no constraint: the checks count them)
CREATE TABLE stress_finishes (
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    worker text NOT NULL,
    outcome text NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- what each batchjob_reap() call took back
CREATE TABLE stress_reaps (
    reaped bigint NOT NULL,
    reaped_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO stress_parents
SELECT 'A', job_id, 'continue', NULL
FROM batchjob_create_parent('{"root": "A"}', 'stress');
INSERT INTO stress_parents
SELECT 'B', job_id, 'continue', NULL
FROM batchjob_create_parent('{"root": "B"}', 'stress');
INSERT INTO stress_parents
SELECT 'C', job_id, 'fail_fast', NULL
FROM batchjob_create_parent('{"root": "C"}', 'stress',
                            on_child_failure => 'fail_fast');
INSERT INTO stress_parents
SELECT 'D', job_id, 'continue', NULL
FROM batchjob_create_parent('{"root": "D"}', 'stress');
INSERT INTO stress_parents
SELECT 'D' || n, p.job_id, CASE n WHEN 3 THEN 'fail_fast' ELSE 'continue' END, 'D'
FROM generate_series(1, 3) AS n,
     LATERAL batchjob_create_parent(
         jsonb_build_object('sub', 'D' || n), 'stress',
         on_child_failure => CASE n WHEN 3 THEN 'fail_fast' ELSE 'continue' END,
         parent_job_id => (SELECT job_id FROM stress_parents WHERE name = 'D')) AS p;

SELECT name, (SELECT count(*) FROM batchjob_split(job_id, total, size)) AS children
FROM stress_parents
JOIN (VALUES ('A', 5999, 4), ('B', 6000, 5), ('C', 3000, 3),
             ('D1', 3000, 5), ('D2', 3000, 5), ('D3', 3000, 5))
     AS s (pname, total, size) ON s.pname = name
ORDER BY name;

UPDATE batch_jobs SET priority = (job_id * 7919) % 10 WHERE NOT is_parent;

/*
 * The second half of a worker's loop, in a transaction of its own: renew
 * the lease, report progress, then complete or fail as the rules above
 * say (each call naming the worker, so it acts only on a job the worker
 * still holds), and record how the attempt ended.
 */
CREATE FUNCTION stress_finish(j bigint, att integer, w text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    size bigint;
    errs bigint;
    st text;
    outcome text;
BEGIN
    SELECT total_records INTO size FROM batch_jobs WHERE job_id = j;
    errs := least(j % 3, size);
    BEGIN
        IF NOT batchjob_heartbeat(j, w, '30 seconds') THEN
            outcome := 'lost: heartbeat';
        ELSIF j % 97 = 0 THEN
            PERFORM batchjob_progress(j, size / 2, 0, size / 2, worker => w);
            SELECT status INTO st
            FROM batchjob_fail(j, 'stress: permanent failure', retry => false,
                                worker => w);
            outcome := lower(st);
        ELSIF j % 89 = 0 OR (j % 53 = 0 AND att = 1) THEN
            PERFORM batchjob_progress(j, 1, 0, 1, worker => w);
            SELECT status INTO st
            FROM batchjob_fail(j, 'stress: failure on attempt ' || att,
                                worker => w);
            outcome := lower(st);
        ELSE
            PERFORM batchjob_progress(j, size, size - errs, errs, worker => w);
            SELECT status INTO st FROM batchjob_complete(j, worker => w);
            outcome := lower(st);
        END IF;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        outcome := 'lost: ' || SQLERRM;
    END;
    INSERT INTO stress_finishes (job_id, attempt, worker, outcome)
    VALUES (j, att, w, outcome);
    RETURN outcome;
END
$$;

-- the crashed worker's claims (last, so that its leases run from now)
INSERT INTO stress_claims (job_id, attempt, worker, lease_until)
SELECT job_id, attempts, locked_by, locked_until
FROM batchjob_claim('crashed', 5, '2 seconds');
