--
-- core: each function of batchjob with a realistic example.
--
-- Jobs are named through psql variables set with \gset.  Every suite starts
-- from an empty table numbering jobs from 1, so its output is the same
-- whichever suites ran before it.
--
TRUNCATE batch_jobs RESTART IDENTITY;

--
-- batchjob_create_parent(criteria, created_by, priority, total_records)
--

-- a parent for a customer import, with priority 5 and an estimate of its size
SELECT job_id AS customers
  FROM batchjob_create_parent('{"file": "customers.csv"}', 'alice',
                              priority => 5, total_records => 1200) \gset
-- it is PENDING, a parent, top-level, and neither started nor completed
SELECT status, is_parent, criteria, created_by, priority, total_records,
       processed_records, success_count, error_count,
       parent_job_id IS NULL AS top_level,
       started_at IS NOT NULL AS started_at_set,
       completed_at IS NOT NULL AS completed_at_set
  FROM batch_jobs WHERE job_id = :customers;

-- priority defaults to 0 and total_records to NULL (not known yet)
SELECT status, is_parent, criteria, created_by, priority, total_records
  FROM batchjob_create_parent('{"file": "suppliers.csv"}', 'alice');

--
-- batchjob_create_child(parent_job_id, batch_number, batch_offset,
--                       batch_size, criteria, priority)
--

-- a PENDING child of batch_size records; criteria, priority and created_by
-- come from the parent
SELECT batch_number, batch_offset, batch_size, total_records, status,
       criteria, priority, created_by, is_parent,
       parent_job_id = :customers AS child_of_customers
  FROM batchjob_create_child(:customers, 1, 0, 600);

-- criteria and priority given for this child override the parent's
SELECT batch_number, batch_offset, batch_size, total_records, status,
       criteria, priority, created_by
  FROM batchjob_create_child(:customers, 2, 600, 400,
                             criteria => '{"file": "customers.csv", "part": 2}',
                             priority => 9);

-- the parent's total is now the sum over its children (600 + 400), which
-- replaces its own estimate of 1200
SELECT status, total_records, child_pending
  FROM batch_jobs WHERE job_id = :customers;

--
-- batchjob_split(parent_job_id, total_records, batch_size)
--

-- 1050 records in batches of 100: 11 batches, numbered from 1, the last one
-- holding the remaining 50; all in one call
SELECT job_id AS orders
  FROM batchjob_create_parent('{"table": "orders"}', 'bob', priority => 1) \gset
SELECT batch_number, batch_offset, batch_size, total_records, status,
       criteria, priority, created_by
  FROM batchjob_split(:orders, 1050, 100);

-- the parent now counts 11 pending children and 1050 records
SELECT status, total_records, child_pending
  FROM batch_jobs WHERE job_id = :orders;

-- an exact multiple: 1000 records in batches of 250 make 4 equal batches
SELECT job_id AS invoices
  FROM batchjob_create_parent('{"table": "invoices"}', 'bob') \gset
SELECT batch_number, batch_offset, batch_size
  FROM batchjob_split(:invoices, 1000, 250);

-- fewer records than batch_size: a single, smaller batch
SELECT job_id AS refunds
  FROM batchjob_create_parent('{"table": "refunds"}', 'bob') \gset
SELECT batch_number, batch_offset, batch_size
  FROM batchjob_split(:refunds, 30, 100);

-- no records at all: no batch, and the total is recorded on the parent
SELECT job_id AS credits
  FROM batchjob_create_parent('{"table": "credits"}', 'bob') \gset
SELECT count(*) AS batches FROM batchjob_split(:credits, 0, 100);
SELECT status, total_records, child_pending
  FROM batch_jobs WHERE job_id = :credits;

--
-- batchjob_children(parent_job_id)
--

-- the children in batch_number order
SELECT batch_number, batch_offset, batch_size, status, criteria
  FROM batchjob_children(:customers);

-- a parent without children has none
SELECT count(*) AS children FROM batchjob_children(:credits);

--
-- batchjob_child_counts(parent_job_id)
--

-- workers report with plain UPDATEs on the children: batch 1 completes,
-- batch 2 fails, batch 3 is being worked on, batch 4 waits
UPDATE batch_jobs
   SET status = 'COMPLETED', processed_records = 250, success_count = 250
 WHERE parent_job_id = :invoices AND batch_number = 1;
UPDATE batch_jobs
   SET status = 'FAILED', processed_records = 100, success_count = 90,
       error_count = 10, error_details = 'connection reset by peer'
 WHERE parent_job_id = :invoices AND batch_number = 2;
UPDATE batch_jobs
   SET status = 'PROCESSING', processed_records = 40, success_count = 40
 WHERE parent_job_id = :invoices AND batch_number = 3;

-- the children counted by status
SELECT pending, processing, completed, failed, cancelled, total
  FROM batchjob_child_counts(:invoices);

-- a parent without children counts none
SELECT pending, processing, completed, failed, cancelled, total
  FROM batchjob_child_counts(:credits);

--
-- batchjob_refresh_parent(parent_job_id)
--

-- the rollup has already kept the parent up to date: PROCESSING, with the
-- sums of its children's counters
SELECT status, total_records, processed_records, success_count, error_count,
       error_details
  FROM batch_jobs WHERE job_id = :invoices;

-- figures damaged by hand on the parent ...
UPDATE batch_jobs SET processed_records = 0, success_count = 0
 WHERE job_id = :invoices;
SELECT status, total_records, processed_records, success_count, error_count
  FROM batch_jobs WHERE job_id = :invoices;

-- ... are recomputed from the children; the function returns the parent
SELECT status, child_pending, child_processing, child_completed,
       child_failed, child_cancelled, total_records, processed_records,
       success_count, error_count, error_details
  FROM batchjob_refresh_parent(:invoices);

-- NULL for a parent without children, which is left as it is
SELECT batchjob_refresh_parent(:credits) IS NULL AS no_children;
SELECT status, total_records FROM batch_jobs WHERE job_id = :credits;

--
-- batchjob_next_pending()
--

-- start from an empty queue: there is no next job
DELETE FROM batch_jobs;
SELECT batchjob_next_pending() IS NULL AS queue_empty;

-- a parent is never returned, however high its priority
SELECT job_id AS nightly
  FROM batchjob_create_parent('{"name": "nightly"}', 'cron',
                              priority => 10) \gset
SELECT batchjob_next_pending() IS NULL AS queue_empty;

-- three stand-alone jobs: the highest priority goes first, and between equal
-- priorities the oldest
INSERT INTO batch_jobs (criteria, priority, created_at) VALUES
    ('{"name": "old-low"}', 0, now() - interval '2 hours'),
    ('{"name": "new-high"}', 5, now()),
    ('{"name": "old-high"}', 5, now() - interval '1 hour');
SELECT criteria->>'name' AS name, priority FROM batchjob_next_pending();

-- the job is not claimed: asking again gives the same answer
SELECT criteria->>'name' AS name, priority FROM batchjob_next_pending();

-- once a worker has taken it, the next one comes up
UPDATE batch_jobs SET status = 'PROCESSING'
 WHERE criteria->>'name' = 'old-high';
SELECT criteria->>'name' AS name, priority FROM batchjob_next_pending();

-- the parent's children inherit its priority of 10 and go first, lowest
-- batch_number first
SELECT count(*) AS batches FROM batchjob_split(:nightly, 20, 10);
SELECT criteria->>'name' AS name, batch_number, priority,
       parent_job_id = :nightly AS child_of_nightly
  FROM batchjob_next_pending();

-- only PENDING jobs are offered: with the children done, back to new-high
UPDATE batch_jobs SET status = 'COMPLETED' WHERE parent_job_id = :nightly;
SELECT criteria->>'name' AS name, priority FROM batchjob_next_pending();
