/*
 * test/purge.sql - pgTAP: batchjob_purge (1.2), the retention of finished
 * job trees: what it deletes and what it leaves, max_rows, the archive,
 * and its errors with their SQLSTATE.  What it does next to a worker that
 * holds a row is in specs/purge_concurrent.spec.
 *
 * Everything here runs in one transaction, so a job finishes at now(); the
 * tests move completed_at back by hand to make a tree old.
 */
BEGIN;
SELECT plan(29);
\ir pgtap/fixture.sql

DELETE FROM batch_job_followups;
DELETE FROM batch_jobs_archive;

CREATE FUNCTION pg_temp.there(text) RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT EXISTS (SELECT FROM batch_jobs WHERE job_id = pg_temp.jid($1)) $$;
-- a parent named name with n children of 10 records, finished (COMPLETED)
-- or not; under another parent when under is given
CREATE FUNCTION pg_temp.tree(nm text, n integer, finished boolean,
                             under text DEFAULT NULL) RETURNS void LANGUAGE plpgsql
    AS $$DECLARE
        pid bigint;
    BEGIN
        SELECT job_id INTO pid
          FROM batchjob_create_parent('{}', 'tenant_a',
                 parent_job_id => CASE WHEN under IS NULL THEN NULL ELSE pg_temp.jid(under) END);
        INSERT INTO ids VALUES (nm, pid);
        INSERT INTO ids SELECT nm || '.' || c.batch_number, c.job_id
          FROM batchjob_split(pid, n * 10, 10) c;
        IF finished THEN
            UPDATE batch_jobs SET status = 'PROCESSING' WHERE parent_job_id = pid;
            UPDATE batch_jobs SET status = 'COMPLETED', processed_records = 10, success_count = 10
             WHERE parent_job_id = pid;
        END IF;
    END$$;
-- make a finished root look finished long ago
CREATE FUNCTION pg_temp.age(name text) RETURNS void LANGUAGE sql
    AS $$ UPDATE batch_jobs SET completed_at = now() - interval '2 days'
           WHERE job_id = pg_temp.jid($1) $$;

/* ---- errors ---- */

SELECT throws_ok($$SELECT batchjob_purge(NULL)$$, '22004',
    'older_than, max_rows and archive must not be null', 'NULL older_than (22004)');
SELECT throws_ok($$SELECT batchjob_purge('1 day', NULL)$$, '22004',
    'older_than, max_rows and archive must not be null', 'NULL max_rows (22004)');
SELECT throws_ok($$SELECT batchjob_purge('1 day', 10, NULL)$$, '22004',
    'older_than, max_rows and archive must not be null', 'NULL archive (22004)');
SELECT throws_ok($$SELECT batchjob_purge('1 day', 0)$$, '22023',
    'max_rows must be at least 1: 0', 'max_rows below 1 (22023)');
SELECT throws_ok($$SELECT batchjob_purge('-1 day')$$, '22023',
    'older_than must not be negative: -1 days', 'a negative older_than (22023)');

/* ---- what goes and what stays ---- */

SELECT pg_temp.tree('old', 3, true);            -- 4 rows, finished long ago
SELECT pg_temp.age('old');
SELECT pg_temp.tree('nested', 2, true);         -- 1 + 2 + (1 + 2) = 6 rows
SELECT pg_temp.tree('nested.sub', 2, true, 'nested');
SELECT pg_temp.age('nested');
SELECT pg_temp.tree('recent', 2, true);         -- finished just now
SELECT pg_temp.tree('live', 2, false);          -- not finished
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('live.1');
UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = pg_temp.jid('live.1');
UPDATE batch_jobs SET completed_at = now() - interval '2 days'
 WHERE job_id = pg_temp.jid('live.1');
INSERT INTO ids SELECT 'solo', job_id
  FROM batchjob_create_parent('{}', 'tenant_a');   -- a childless parent
UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = pg_temp.jid('solo');
SELECT pg_temp.age('solo');

SELECT is((SELECT status FROM batch_jobs WHERE job_id = pg_temp.jid('nested')), 'COMPLETED',
    'the nested tree is finished');

SELECT is(batchjob_purge('1 day', 5), 5::bigint,
    'max_rows 5: the first tree (4 rows) and the childless root (1); the nested tree (6) does not fit');
SELECT ok(NOT pg_temp.there('old') AND NOT pg_temp.there('old.1') AND NOT pg_temp.there('old.3'),
    'the old tree is gone, root and children');
SELECT ok(NOT pg_temp.there('solo'), 'the old childless root is gone');
SELECT ok(pg_temp.there('nested') AND pg_temp.there('nested.sub.1'),
    'the tree that did not fit is left for a later call');
SELECT is(batchjob_purge('1 day'), 6::bigint, 'the next call takes the nested tree, every level');
SELECT ok(NOT pg_temp.there('nested.sub') AND NOT pg_temp.there('nested.sub.2'),
    'the nested tree is gone at every level');
SELECT ok(pg_temp.there('recent'), 'a tree that finished after the cutoff stays');
SELECT ok(pg_temp.there('live') AND pg_temp.there('live.1'),
    'an unfinished tree stays, and so does its old finished child');
SELECT is(batchjob_purge('1 day'), 0::bigint, 'nothing left to purge: 0');
SELECT is(batchjob_purge('0 seconds'), 0::bigint,
    'a root that finished at this very moment is not before now() - 0');
SELECT is_empty('SELECT * FROM batchjob_verify()', 'verify finds nothing wrong after purging');
SELECT is((SELECT (status, child_completed, child_pending)::text FROM batch_jobs
            WHERE job_id = pg_temp.jid('live')), '(PROCESSING,1,1)',
    'the live parent''s counters are untouched');

/* ---- waiting differences and follow-up rows go with their tree ---- */

SELECT pg_temp.tree('w', 1, true);
SELECT pg_temp.age('w');
INSERT INTO batch_job_deltas (parent_job_id, child_pending, child_processing, child_completed,
                              child_failed, child_cancelled, total_records,
                              processed_records, success_count, error_count)
VALUES (pg_temp.jid('w'), 0, 0, 0, 0, 0, 0, 0, 0, 0);
INSERT INTO ids SELECT 'f', job_id
  FROM batchjob_create_followup(ARRAY[pg_temp.jid('recent')], '{}', 'tenant_a');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('f');
UPDATE batch_jobs SET status = 'COMPLETED', completed_at = now() - interval '2 days'
 WHERE job_id = pg_temp.jid('f');
SELECT is(batchjob_purge('1 day'), 3::bigint, 'a tree with a waiting difference and a finished follow-up');
SELECT is((SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = pg_temp.jid('w')), 0::bigint,
    'its waiting differences are gone');
SELECT is((SELECT count(*) FROM batch_job_followups WHERE job_id = pg_temp.jid('f')), 0::bigint,
    'the follow-up''s rows in batch_job_followups are gone');

/* ---- a whole tree deleted by hand, as purge does, and by the cascade ---- */

SELECT pg_temp.tree('d1', 2, false);
SELECT pg_temp.tree('d1.sub', 2, false, 'd1');
DELETE FROM batch_jobs WHERE job_id IN (SELECT id FROM ids WHERE name LIKE 'd1%');
SELECT is((SELECT count(*) FROM batch_job_deltas), 0::bigint,
    'deleting an unfinished tree in one statement leaves no difference behind');
SELECT pg_temp.tree('d2', 2, false);
SELECT pg_temp.tree('d2.sub', 2, false, 'd2');
DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('d2');
SELECT ok(NOT pg_temp.there('d2.sub.1'), 'deleting a root deletes its tree (ON DELETE CASCADE)');
SELECT is_empty('SELECT * FROM batchjob_verify()', 'verify finds nothing wrong after both');

/* ---- a deeper level: an unfinished grandchild keeps the whole tree ---- */

SELECT pg_temp.tree('g', 1, true);
SELECT pg_temp.tree('g.sub', 2, true, 'g');
SELECT pg_temp.age('g');
-- a grandchild back to PENDING whose difference has not reached its
-- parents yet (as while it waits for a busy folder): triggers off
SET session_replication_role = replica;
UPDATE batch_jobs SET status = 'PENDING' WHERE job_id = pg_temp.jid('g.sub.2');
RESET session_replication_role;
SELECT is(batchjob_purge('1 day'), 0::bigint,
    'a finished root over a grandchild that is PENDING again: nothing purged');
SELECT ok(pg_temp.there('g') AND pg_temp.there('g.sub') AND pg_temp.there('g.sub.1'),
    'the tree stays whole');
DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('g');

/* ---- archive ---- */

SELECT pg_temp.tree('arch', 2, true);
SELECT pg_temp.age('arch');
CREATE TEMP TABLE before AS
    SELECT * FROM batch_jobs WHERE job_id IN (pg_temp.jid('arch'), pg_temp.jid('arch.1'),
                                              pg_temp.jid('arch.2'));
SELECT is(batchjob_purge('1 day', archive => true), 3::bigint, 'archive: the tree is purged');
SELECT set_eq('SELECT * FROM batch_jobs_archive', 'SELECT * FROM before',
    'archive: batch_jobs_archive holds its rows exactly as they were');
SELECT ok(NOT pg_temp.there('arch'), 'archive: and they are gone from batch_jobs');

SELECT * FROM finish();
ROLLBACK;
