--
-- errors: every error batchjob raises, with its SQLSTATE, and proof that a
-- rejected statement changes nothing.
--
-- Jobs are named through psql variables set with \gset.  Every suite starts
-- from an empty table numbering jobs from 1, so its output is the same
-- whichever suites ran before it (error messages name jobs by number).
--
TRUNCATE batch_jobs RESTART IDENTITY;

-- each error shows its message, DETAIL and HINT, and then its SQLSTATE from
-- psql's SQLSTATE variable (00000 would mean the statement succeeded)
\set SHOW_CONTEXT never

-- a parent split into four batches of 10: batch 1 COMPLETED, batch 2
-- PROCESSING, batch 3 CANCELLED, batch 4 PENDING
SELECT job_id AS big
  FROM batchjob_create_parent('{"table": "payments"}', 'ops') \gset
SELECT count(*) AS batches FROM batchjob_split(:big, 40, 10);
UPDATE batch_jobs
   SET status = 'COMPLETED', processed_records = 10, success_count = 9,
       error_count = 1
 WHERE parent_job_id = :big AND batch_number = 1;
UPDATE batch_jobs
   SET status = 'PROCESSING', processed_records = 4, success_count = 4
 WHERE parent_job_id = :big AND batch_number = 2;
UPDATE batch_jobs SET status = 'CANCELLED'
 WHERE parent_job_id = :big AND batch_number = 3;

-- a stand-alone job, which is not a parent
INSERT INTO batch_jobs (criteria) VALUES ('{"report": "daily"}')
RETURNING job_id AS lone \gset

-- the parent's figures, shown after every rejected statement below: they
-- never change
PREPARE figures AS
SELECT status, child_pending AS pending, child_processing AS processing,
       child_completed AS completed, child_failed AS failed,
       child_cancelled AS cancelled, total_records AS total,
       processed_records AS processed, success_count AS success,
       error_count AS errors,
       (SELECT count(*) FROM batch_jobs c
         WHERE c.parent_job_id = p.job_id) AS children
  FROM batch_jobs p WHERE job_id = :big;
EXECUTE figures;

--
-- A parent that does not exist: 23503 (foreign_key_violation)
--

SELECT job_id FROM batchjob_create_child(999999, 1, 0, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_split(999999, 100, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT count(*) FROM batchjob_children(999999);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT total FROM batchjob_child_counts(999999);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_refresh_parent(999999);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- plain SQL meets the foreign key
INSERT INTO batch_jobs (parent_job_id, batch_number) VALUES (999999, 1);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- moving a child to a parent that does not exist
UPDATE batch_jobs SET parent_job_id = 999999
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- A job that is not a parent: 22023 (invalid_parameter_value)
--

SELECT job_id FROM batchjob_create_child(:lone, 1, 0, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_split(:lone, 100, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT count(*) FROM batchjob_children(:lone);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT total FROM batchjob_child_counts(:lone);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_refresh_parent(:lone);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- plain SQL: a child inserted under a job that is not a parent
INSERT INTO batch_jobs (parent_job_id, batch_number) VALUES (:lone, 1);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- moving a child under a job that is not a parent: the whole statement is
-- undone, including what it had already taken off the old parent
UPDATE batch_jobs SET parent_job_id = :lone
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- Out-of-range arguments: 22023 (invalid_parameter_value)
--

-- a negative total_records
SELECT job_id FROM batchjob_create_parent('{}', 'ops', 0, -1);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_split(:big, -1, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- a batch_size that is not positive
SELECT job_id FROM batchjob_create_child(:big, 5, 40, 0);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_split(:big, 100, -10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- a negative batch_offset
SELECT job_id FROM batchjob_create_child(:big, 5, -1, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- a negative batch_number
SELECT job_id FROM batchjob_create_child(:big, -1, 40, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- A batch_number the parent already has: 23505 (unique_violation)
--

SELECT job_id FROM batchjob_create_child(:big, 1, 0, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- plain SQL meets the unique constraint
INSERT INTO batch_jobs (parent_job_id, batch_number) VALUES (:big, 2);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- NULL for a required argument: 22004 (null_value_not_allowed)
--

SELECT job_id FROM batchjob_create_parent(NULL, 'ops');
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_create_parent('{}', NULL);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_create_parent('{}', 'ops', NULL);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_create_child(NULL, 5, 40, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_create_child(:big, NULL, 40, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_create_child(:big, 5, NULL, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_create_child(:big, 5, 40, NULL);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_split(NULL, 100, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_split(:big, NULL, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_split(:big, 100, NULL);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT count(*) FROM batchjob_children(NULL);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT total FROM batchjob_child_counts(NULL);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

SELECT job_id FROM batchjob_refresh_parent(NULL);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- Values the table refuses: 23514 (check_violation)
--

-- The table's CHECK constraint is batchjob_row_check(); its DETAIL names
-- the broken rule, and the message the rule's constraint name of 1.1.

-- a negative counter on a child
UPDATE batch_jobs SET processed_records = -1
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

UPDATE batch_jobs SET error_count = -5
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- a negative child counter on the parent
UPDATE batch_jobs SET child_pending = -1 WHERE job_id = :big;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- more records processed than the child has
UPDATE batch_jobs SET processed_records = 11
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- a batch_size that is not positive, in plain SQL
INSERT INTO batch_jobs (parent_job_id, batch_number, batch_size)
VALUES (:big, 5, 0);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- a job that is its own parent
UPDATE batch_jobs SET parent_job_id = job_id
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- a failure mode and attempts the table does not know
UPDATE batch_jobs SET on_child_failure = 'stop' WHERE job_id = :big;
\echo SQLSTATE :SQLSTATE
UPDATE batch_jobs SET attempts = -1
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
UPDATE batch_jobs SET max_attempts = 0
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- two rules broken at once: the first by constraint name is reported
UPDATE batch_jobs SET attempts = -1, processed_records = -1
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE

-- an unknown status meets the row guard first (see bad_input); with the
-- triggers off, as in a replica's apply, the constraint still refuses it
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE batch_jobs SET status = 'DONE'
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
ROLLBACK;

-- a NULL passes each rule, as in SQL: a job without a known total may
-- count any number of records
INSERT INTO batch_jobs (created_by, processed_records, total_records)
VALUES ('errors', 7, NULL)
RETURNING processed_records, total_records IS NULL AS no_total;
DELETE FROM batch_jobs WHERE created_by = 'errors' AND processed_records = 7;

-- an unknown status, on an UPDATE and on an INSERT (status names are
-- upper case)
UPDATE batch_jobs SET status = 'DONE'
 WHERE parent_job_id = :big AND batch_number = 4;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

INSERT INTO batch_jobs (parent_job_id, batch_number, status)
VALUES (:big, 5, 'completed');
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- A finished child back to work: 55000 (object_not_in_prerequisite_state)
--

-- a COMPLETED child cannot go back to PENDING
UPDATE batch_jobs SET status = 'PENDING'
 WHERE parent_job_id = :big AND batch_number = 1;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- a CANCELLED child cannot go back to PROCESSING
UPDATE batch_jobs SET status = 'PROCESSING'
 WHERE parent_job_id = :big AND batch_number = 3;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- A parent with children: 55000 (object_not_in_prerequisite_state)
--

-- it cannot be split again
SELECT job_id FROM batchjob_split(:big, 100, 10);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- its status cannot be set by hand
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = :big;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- not even together with its children in one statement: cancel the
-- children, and the parent follows
UPDATE batch_jobs SET status = 'CANCELLED'
 WHERE job_id = :big OR parent_job_id = :big;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

-- it must stay a parent
UPDATE batch_jobs SET is_parent = false WHERE job_id = :big;
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- More batches than one split may create (100,000): 22023
-- (invalid_parameter_value)
--

SELECT job_id FROM batchjob_split(:big, 3000000000, 1);
\echo SQLSTATE :SQLSTATE
EXECUTE figures;

--
-- After all of that, the children are as they were and no job was added
--

SELECT batch_number, status, processed_records, success_count, error_count
  FROM batchjob_children(:big);
SELECT count(*) AS jobs FROM batch_jobs;
