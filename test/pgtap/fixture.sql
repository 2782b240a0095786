/*
 * test/pgtap/fixture.sql - what every pgTAP suite (test/NAME.sql) starts
 * from, included right after plan() with \ir pgtap/fixture.sql.  It runs
 * inside the suite's transaction, so the ROLLBACK at the end undoes it too.
 *
 * - An empty table: the claim, next_pending and verify read the whole
 *   table, so a suite sees only the jobs it made.
 * - ids: the suite's jobs by name, readable by every role the suite
 *   switches to.
 * - A few lookups by name.  A helper only some suites need stays in them.
 */

DELETE FROM batch_jobs;
DELETE FROM batch_job_deltas;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint NOT NULL);
GRANT ALL ON ids TO PUBLIC;

-- The id of a named job.  An unknown name is an error, so that a typo
-- cannot make a comparison between two NULLs pass.
CREATE FUNCTION pg_temp.jid(text) RETURNS bigint LANGUAGE plpgsql STABLE
    AS $$DECLARE i bigint;
    BEGIN
        SELECT id INTO STRICT i FROM ids WHERE name = $1;
        RETURN i;
    END$$;

-- The child with a given batch_number under a named parent.
CREATE FUNCTION pg_temp.child(text, integer) RETURNS bigint LANGUAGE plpgsql STABLE
    AS $$DECLARE i bigint;
    BEGIN
        SELECT job_id INTO STRICT i FROM batch_jobs
            WHERE parent_job_id = pg_temp.jid($1) AND batch_number = $2;
        RETURN i;
    END$$;

-- The status of a named job.
CREATE FUNCTION pg_temp.st(text) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;

-- Completes a named job, a setup step that must work (complete's own
-- behaviour is asserted in test/lifecycle.sql).
CREATE FUNCTION pg_temp.done(name text) RETURNS void LANGUAGE sql
    AS $$ SELECT NULL FROM batchjob_complete(pg_temp.jid(name)) $$;
