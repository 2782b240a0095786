-- test/t/hostile/exercise.sql - every function and trigger path of
-- batchjob, as the caller; every name the caller itself writes is
-- qualified, so that only batchjob's own lookups can meet a trap.  psql
-- variables: tag, w (a worker name), wrole (a role to grant), pre (a file
-- to run first, optional).  Prints key=value lines (p, q, s, calls).
\if :{?pre}
\i :pre
\endif
UPDATE public.batch_jobs SET run_at = 'infinity'
 WHERE status OPERATOR(pg_catalog.=) 'PENDING' AND NOT is_parent;
SELECT job_id AS p FROM public.batchjob_create_parent('{"x": 1}', :'tag', 0, NULL, 'continue', NULL) \gset
SELECT pg_catalog.count(*) AS n_split FROM public.batchjob_split(:p, 50, 10) \gset
SELECT job_id AS c6 FROM public.batchjob_create_child(:p, 6, 50, 5) \gset
SELECT job_id AS s FROM public.batchjob_create_parent('{}', :'tag', 0, NULL, 'fail_fast', :p) \gset
SELECT pg_catalog.count(*) AS n_split_s FROM public.batchjob_split(:s, 20, 10) \gset
SELECT job_id AS c1 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 1 \gset
SELECT job_id AS c2 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 2 \gset
SELECT job_id AS c3 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 3 \gset
SELECT job_id AS c4 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 4 \gset
SELECT job_id AS c5 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 5 \gset
SELECT job_id AS g1 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :s AND batch_number OPERATOR(pg_catalog.=) 1 \gset
SELECT pg_catalog.count(*) AS n_children FROM public.batchjob_children(:p) \gset
SELECT total AS n_counts FROM public.batchjob_child_counts(:p) \gset
SELECT (public.batchjob_next_pending()).job_id OPERATOR(pg_catalog.=) :c1 AS next_is_c1 \gset
SELECT pg_catalog.count(*) AS n_claim1 FROM public.batchjob_claim(:'w', 3) \gset
SELECT public.batchjob_heartbeat(:c1, :'w') AS hb \gset
SELECT processed_records AS c1_processed FROM public.batchjob_progress(:c1, 10, 9, 1, :'w') \gset
SELECT status AS st_c1 FROM public.batchjob_complete(:c1, :'w') \gset
SELECT status AS st_c2 FROM public.batchjob_fail(:c2, 'boom', true, :'w') \gset
SELECT status AS st_c3 FROM public.batchjob_fail(:c3, 'final', false, :'w') \gset
SELECT status AS st_c3r FROM public.batchjob_retry(:c3) \gset
UPDATE public.batch_jobs SET run_at = 'infinity' WHERE job_id OPERATOR(pg_catalog.=) :c2;
SELECT pg_catalog.count(*) AS n_claim2 FROM public.batchjob_claim(:'w', 10) \gset
SELECT public.batchjob_complete(ARRAY[:c4, :c5]::bigint[]) AS n_done \gset
SELECT public.batchjob_fail(ARRAY[:c6]::bigint[], 'x', false) AS n_failed \gset
SELECT status AS st_g1 FROM public.batchjob_fail(:g1, 'g', false, :'w') \gset
SELECT public.batchjob_heartbeat(:c3, :'w', '1 microsecond') AS hb3 \gset
SELECT pg_catalog.pg_sleep(0.05);
SELECT public.batchjob_reap() AS n_reaped \gset
SELECT public.batchjob_cancel(:p) AS n_cancelled \gset
SELECT job_id AS q FROM public.batchjob_create_parent('{}', :'tag') \gset
SELECT pg_catalog.count(*) AS n_split_q FROM public.batchjob_split(:q, 20, 10) \gset
UPDATE public.batch_jobs SET status = 'PROCESSING' WHERE parent_job_id OPERATOR(pg_catalog.=) :q;
UPDATE public.batch_jobs SET status = 'COMPLETED', processed_records = 10, success_count = 10
 WHERE parent_job_id OPERATOR(pg_catalog.=) :q;
INSERT INTO public.batch_jobs (parent_job_id, batch_number, batch_offset, batch_size,
                               total_records, created_by, run_at)
VALUES (:q, 3, 20, 5, 5, :'tag', 'infinity') RETURNING job_id AS q3 \gset
SELECT status AS st_q_reopened FROM public.batch_jobs WHERE job_id OPERATOR(pg_catalog.=) :q \gset
DELETE FROM public.batch_jobs WHERE job_id OPERATOR(pg_catalog.=) :q3;
SELECT job_id AS t FROM public.batchjob_create_parent('{}', :'tag') \gset
SELECT pg_catalog.count(*) AS n_split_t FROM public.batchjob_split(:t, 10, 10) \gset
DELETE FROM public.batch_jobs WHERE job_id OPERATOR(pg_catalog.=) :t;
SELECT status AS st_refresh FROM public.batchjob_refresh_parent(:p) \gset
SELECT public.batchjob_fold() AS n_fold \gset
SELECT public.batchjob_fold(:p) AS n_fold_p \gset
SELECT pg_catalog.count(*) AS n_verify FROM public.batchjob_verify() \gset
SELECT status AS st_view, percent_done AS pct_view, children AS children_view
  FROM public.batch_job_progress WHERE job_id OPERATOR(pg_catalog.=) :p \gset
SELECT public.batchjob_grant(:'wrole', 'worker');
SELECT public.batchjob_revoke(:'wrole');
SELECT public.batchjob_grant(:'wrole', 'worker');
SELECT job_id AS m1 FROM public.batchjob_create_parent('{}', :'tag') \gset
SELECT job_id AS m2 FROM public.batchjob_create_parent('{}', :'tag') \gset
UPDATE public.batch_jobs SET parent_job_id = :m1 WHERE job_id OPERATOR(pg_catalog.=) :m2;
SELECT child_pending AS m1_pending FROM public.batch_jobs WHERE job_id OPERATOR(pg_catalog.=) :m1 \gset
\if :{?pre}
SELECT pg_catalog.count(*) AS n_temp FROM pg_temp.batch_jobs \gset
\else
\set n_temp 0
\endif
\echo p=:p
\echo q=:q
\echo s=:s
\echo calls=:n_split,:n_split_s,:n_children,:n_counts,:next_is_c1,:n_claim1,:hb,:c1_processed,:st_c1,:st_c2,:st_c3,:st_c3r,:n_claim2,:n_done,:n_failed,:st_g1,:hb3,:n_reaped,:n_cancelled,:n_split_q,:st_q_reopened,:n_split_t,:st_refresh,:n_fold_p,:n_verify,:st_view,:pct_view,:children_view,:n_temp,:m1_pending
