-- test/t/hostile/pretemp.sql - the caller's own look-alikes in pg_temp
-- (scenario E), included by exercise.sql when psql variable pre names it.
CREATE TEMP TABLE batch_jobs (LIKE public.batch_jobs);
CREATE TEMP TABLE batch_job_deltas (LIKE public.batch_job_deltas);
CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON pg_temp.batch_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON pg_temp.batch_job_deltas
    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE plpgsql
    AS $$BEGIN PERFORM hlog.note('pg_temp.now()'); RETURN pg_catalog.now(); END$$;
CREATE FUNCTION pg_temp.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql
    AS $$BEGIN PERFORM hlog.note('pg_temp.clock_timestamp()');
             RETURN pg_catalog.clock_timestamp(); END$$;
CREATE FUNCTION pg_temp.power(numeric, double precision) RETURNS double precision
    LANGUAGE plpgsql AS $$BEGIN PERFORM hlog.note('pg_temp.power(numeric, float8)');
                             RETURN pg_catalog.power($1::pg_catalog.float8, $2); END$$;
CREATE FUNCTION pg_temp.batchjob_tenant_visible(text) RETURNS boolean LANGUAGE plpgsql
    AS $$BEGIN PERFORM hlog.note('pg_temp.batchjob_tenant_visible(text)'); RETURN true; END$$;
