-- test/t/hostile/lookalikes.sql - psql variables hrole and s: tables named
-- like batchjob's, with triggers that log, in schema s, all owned by the
-- hostile role (the superuser copies the columns, which the hostile role
-- may not read).
CREATE TABLE :"s".batch_jobs (LIKE public.batch_jobs);
CREATE TABLE :"s".batch_job_deltas (LIKE public.batch_job_deltas);
CREATE TABLE :"s".batch_job_workers (worker regrole, tenants text[]);
ALTER TABLE :"s".batch_jobs OWNER TO :"hrole";
ALTER TABLE :"s".batch_job_deltas OWNER TO :"hrole";
ALTER TABLE :"s".batch_job_workers OWNER TO :"hrole";
SET ROLE :"hrole";
GRANT ALL ON :"s".batch_jobs, :"s".batch_job_deltas, :"s".batch_job_workers TO PUBLIC;
CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON :"s".batch_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON :"s".batch_job_deltas
    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON :"s".batch_job_workers
    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
CREATE VIEW :"s".batch_job_progress AS SELECT * FROM :"s".batch_jobs;
RESET ROLE;
