/*
 * test/followups.sql - pgTAP: follow-up jobs (1.2), batchjob_create_followup
 * and batchjob_start_followups: every rule of when a follow-up starts or is
 * cancelled, chains and fan-ins, its errors with their SQLSTATE, and the
 * rows batchjob_verify() gives for a follow-up left waiting.
 *
 * Jobs are finished with plain SQL (the rollup and the guard treat it as
 * they treat the worker functions), so each test forces the state it needs.
 */
BEGIN;
SELECT plan(75);
\ir pgtap/fixture.sql

DELETE FROM batch_job_followups;

-- waiting: PENDING and parked until what it waits for finishes
CREATE FUNCTION pg_temp.waits(text) RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT status = 'PENDING' AND run_at = 'infinity'
            FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;
-- started: PENDING and claimable now
CREATE FUNCTION pg_temp.started(text) RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT status = 'PENDING' AND run_at <= clock_timestamp()
            FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;
CREATE FUNCTION pg_temp.why(text) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT error_details FROM batch_jobs WHERE job_id = pg_temp.jid($1) $$;
-- a plain top-level job
CREATE FUNCTION pg_temp.plain(name text) RETURNS void LANGUAGE sql
    AS $$ WITH j AS (INSERT INTO batch_jobs (status, criteria, created_by)
                     VALUES ('PENDING', '{}', 'tenant_a') RETURNING job_id)
          INSERT INTO ids SELECT $1, job_id FROM j $$;
-- finish a plain job through PROCESSING
CREATE FUNCTION pg_temp.fin(name text, status text) RETURNS void LANGUAGE sql
    AS $$ UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid($1);
          UPDATE batch_jobs SET status = $2 WHERE job_id = pg_temp.jid($1) $$;
CREATE FUNCTION pg_temp.follow(name text, after_names text[], after text DEFAULT 'success')
RETURNS void LANGUAGE sql
    AS $$ INSERT INTO ids SELECT $1, job_id FROM batchjob_create_followup(
              ARRAY(SELECT pg_temp.jid(n) FROM unnest($2) n), '{"step": "next"}',
              'tenant_a', $3) $$;

/* ---- a follow-up waits, unclaimable ---- */

SELECT pg_temp.plain('a');
SELECT pg_temp.follow('fa', '{a}');
SELECT ok(pg_temp.waits('fa'), 'create: the follow-up is PENDING with run_at infinity');
SELECT is((SELECT (is_parent, parent_job_id, created_by, criteria::text, priority)::text
             FROM batch_jobs WHERE job_id = pg_temp.jid('fa')),
          '(f,,tenant_a,"{""step"": ""next""}",0)',
          'create: a plain top-level job with the criteria, created_by and priority given');
SELECT ok((SELECT has_followers FROM batch_jobs WHERE job_id = pg_temp.jid('a')),
          'create: the waited-for job gets has_followers');
SELECT is((SELECT (after, done_at IS NULL)::text FROM batch_job_followups
            WHERE job_id = pg_temp.jid('fa') AND after_job_id = pg_temp.jid('a')),
          '(success,t)', 'create: the wait is recorded, not done');
UPDATE batch_jobs SET run_at = 'infinity' WHERE job_id = pg_temp.jid('a');
SELECT ok(batchjob_next_pending() IS NULL, 'a waiting follow-up is not the next pending job');
SELECT is((SELECT count(*) FROM batchjob_claim('w')), 0::bigint, 'a waiting follow-up is not claimed');
SELECT is(batchjob_start_followups(pg_temp.jid('a')), 0::bigint,
          'batchjob_start_followups on an unfinished job changes nothing');
SELECT ok(pg_temp.waits('fa'), '... and the follow-up still waits');
UPDATE batch_jobs SET criteria = '{"x": 1}' WHERE job_id = pg_temp.jid('a');
SELECT ok(pg_temp.waits('fa'), 'a change to the waited-for job that does not finish it starts nothing');

/* ---- after success ---- */

SELECT pg_temp.fin('a', 'COMPLETED');
SELECT ok(pg_temp.started('fa'), 'success: a COMPLETED job starts its follow-up');
SELECT isnt((SELECT done_at FROM batch_job_followups WHERE job_id = pg_temp.jid('fa')), NULL,
            'success: the wait is marked done');
SELECT is((SELECT job_id FROM batchjob_claim('w')), pg_temp.jid('fa'), 'the started follow-up is claimed');

SELECT pg_temp.plain('b');
SELECT pg_temp.follow('fb', '{b}');
SELECT pg_temp.fin('b', 'FAILED');
SELECT is(pg_temp.st('fb'), 'CANCELLED', 'success: a FAILED job cancels its follow-up');
SELECT is(pg_temp.why('fb'), format('job %s, which it waited for, ended FAILED', pg_temp.jid('b')),
          'success: error_details names the job and how it ended');

SELECT pg_temp.plain('c');
SELECT pg_temp.follow('fc', '{c}');
SELECT pg_temp.fin('c', 'CANCELLED');
SELECT is(pg_temp.st('fc'), 'CANCELLED', 'success: a CANCELLED job cancels its follow-up');

-- a retry that fails again does not finish the job: nothing happens yet
SELECT pg_temp.plain('r');
SELECT pg_temp.follow('fr', '{r}');
UPDATE batch_jobs SET status = 'PROCESSING' WHERE job_id = pg_temp.jid('r');
UPDATE batch_jobs SET status = 'PENDING' WHERE job_id = pg_temp.jid('r');
SELECT ok(pg_temp.waits('fr'), 'a job put back to PENDING (a retry) has not finished: the follow-up waits');

/* ---- after complete ---- */

SELECT pg_temp.plain('d');
SELECT pg_temp.follow('fd', '{d}', 'complete');
SELECT pg_temp.fin('d', 'FAILED');
SELECT ok(pg_temp.started('fd'), 'complete: a FAILED job starts its follow-up');
SELECT is(pg_temp.why('fd'), NULL, 'complete: no error_details');

SELECT pg_temp.plain('e');
SELECT pg_temp.follow('fe', '{e}', 'complete');
SELECT pg_temp.fin('e', 'CANCELLED');
SELECT ok(pg_temp.started('fe'), 'complete: a CANCELLED job starts its follow-up');

/* ---- parents ---- */

INSERT INTO ids SELECT 'p', job_id FROM batchjob_create_parent('{}', 'tenant_a');
INSERT INTO ids SELECT 'p' || batch_number, job_id FROM batchjob_split(pg_temp.jid('p'), 20, 10);
SELECT pg_temp.follow('fps', '{p}');
SELECT pg_temp.follow('fpc', '{p}', 'complete');
SELECT pg_temp.fin('p1', 'COMPLETED');
SELECT ok(pg_temp.waits('fps') AND pg_temp.waits('fpc'), 'parent: one child finished, the follow-ups wait');
SELECT pg_temp.fin('p2', 'FAILED');
SELECT is(pg_temp.st('p'), 'COMPLETED', 'parent: COMPLETED with a failed child');
SELECT is(pg_temp.st('fps'), 'CANCELLED', 'success: a parent COMPLETED with a failed child cancels its follow-up');
SELECT is(pg_temp.why('fps'),
          format('job %s, which it waited for, ended COMPLETED (1 out of 2 batch jobs failed)', pg_temp.jid('p')),
          'success: error_details says how many children failed');
SELECT ok(pg_temp.started('fpc'), 'complete: the same parent starts its follow-up');

INSERT INTO ids SELECT 'q', job_id FROM batchjob_create_parent('{}', 'tenant_a');
INSERT INTO ids SELECT 'q' || batch_number, job_id FROM batchjob_split(pg_temp.jid('q'), 20, 10);
SELECT pg_temp.follow('fq', '{q}');
SELECT pg_temp.fin('q1', 'COMPLETED');
SELECT pg_temp.fin('q2', 'COMPLETED');
SELECT ok(pg_temp.started('fq'), 'success: a parent whose children all completed starts its follow-up');

/* ---- already finished when the follow-up is made ---- */

SELECT pg_temp.follow('fa2', '{a}');
SELECT ok(pg_temp.started('fa2'), 'a job that completed before: the follow-up starts at once');
SELECT pg_temp.follow('fb2', '{b}');
SELECT is(pg_temp.st('fb2'), 'CANCELLED', 'a job that failed before: after success the follow-up is cancelled at once');
SELECT pg_temp.follow('fb3', '{b}', 'complete');
SELECT ok(pg_temp.started('fb3'), 'a job that failed before: after complete the follow-up starts at once');

/* ---- chains ---- */

SELECT pg_temp.plain('x');
SELECT pg_temp.follow('x2', '{x}');
SELECT pg_temp.follow('x3', '{x2}');
SELECT pg_temp.follow('x3c', '{x2}', 'complete');
SELECT ok(pg_temp.waits('x2') AND pg_temp.waits('x3'), 'chain: each step waits');
SELECT pg_temp.fin('x', 'COMPLETED');
SELECT ok(pg_temp.started('x2') AND pg_temp.waits('x3'), 'chain: the first finish starts the second step only');
SELECT pg_temp.fin('x2', 'COMPLETED');
SELECT ok(pg_temp.started('x3'), 'chain: the second finish starts the third');

SELECT pg_temp.plain('y');
SELECT pg_temp.follow('y2', '{y}');
SELECT pg_temp.follow('y3', '{y2}');
SELECT pg_temp.follow('y3c', '{y2}', 'complete');
SELECT pg_temp.fin('y', 'FAILED');
SELECT is(pg_temp.st('y2') || ' ' || pg_temp.st('y3'), 'CANCELLED CANCELLED',
          'chain: a failure cancels every later step that waits for success');
SELECT ok(pg_temp.started('y3c'), 'chain: a step that waits for completion starts after a cancelled one');

/* ---- fan-in ---- */

SELECT pg_temp.plain('m');
SELECT pg_temp.plain('n');
SELECT pg_temp.follow('mn', '{m,n,m}');
SELECT is((SELECT count(*) FROM batch_job_followups WHERE job_id = pg_temp.jid('mn')), 2::bigint,
          'fan-in: one wait per job, duplicates ignored');
SELECT pg_temp.fin('n', 'COMPLETED');
SELECT ok(pg_temp.waits('mn'), 'fan-in: one of two finished, it waits');
SELECT pg_temp.fin('m', 'COMPLETED');
SELECT ok(pg_temp.started('mn'), 'fan-in: both finished, it starts');

SELECT pg_temp.plain('k');
SELECT pg_temp.plain('l');
SELECT pg_temp.follow('kl', '{k,l}');
SELECT pg_temp.fin('k', 'FAILED');
SELECT is(pg_temp.st('kl'), 'CANCELLED', 'fan-in: the first failure cancels a follow-up after success at once');
SELECT is((SELECT count(*) FROM batch_job_followups WHERE job_id = pg_temp.jid('kl') AND done_at IS NULL),
          0::bigint, 'fan-in: ... and it waits for nothing any more');
SELECT pg_temp.fin('l', 'COMPLETED');
SELECT is(pg_temp.st('kl'), 'CANCELLED', 'fan-in: the other finish leaves it CANCELLED');

SELECT pg_temp.plain('g');
SELECT pg_temp.plain('h');
SELECT pg_temp.fin('g', 'COMPLETED');
SELECT pg_temp.follow('gh', '{g,h}');
SELECT ok(pg_temp.waits('gh'), 'fan-in: one already finished, it waits for the other');
SELECT pg_temp.fin('h', 'COMPLETED');
SELECT ok(pg_temp.started('gh'), 'fan-in: then the other finishes and it starts');

/* ---- a follow-up cancelled by hand while it waits ---- */

SELECT pg_temp.plain('s');
SELECT pg_temp.follow('fs', '{s}');
SELECT is(batchjob_cancel(pg_temp.jid('fs')), 1::bigint, 'a waiting follow-up can be cancelled');
SELECT pg_temp.fin('s', 'COMPLETED');
SELECT is(pg_temp.st('fs'), 'CANCELLED', '... and stays CANCELLED when its job finishes');

/* ---- errors ---- */

SELECT throws_ok($$SELECT batchjob_create_followup(NULL, '{}', 'a')$$, '22004',
    'after_job_ids must not be null', 'NULL after_job_ids (22004)');
SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[1], NULL, 'a')$$, '22004',
    'criteria must not be null', 'NULL criteria (22004)');
SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[1], '{}', NULL)$$, '22004',
    'created_by must not be null', 'NULL created_by (22004)');
SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[1], '{}', 'a', NULL)$$, '22004',
    'after must not be null', 'NULL after (22004)');
SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[1], '{}', 'a', priority => NULL)$$, '22004',
    'priority must not be null', 'NULL priority (22004)');
SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[1, NULL], '{}', 'a')$$, '22004',
    'after_job_ids must not contain NULL', 'a NULL in after_job_ids (22004)');
SELECT throws_ok($$SELECT batchjob_create_followup('{}', '{}', 'a')$$, '22023',
    'after_job_ids must name at least one job', 'no job to wait for (22023)');
SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[1], '{}', 'a', 'done')$$, '22023',
    'unknown after "done"', 'an unknown after (22023)');
SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[1], '{}', 'a', total_records => -1)$$, '22023',
    'total_records must not be negative: -1', 'a negative total_records (22023)');
SELECT throws_ok($$SELECT batchjob_create_followup(ARRAY[1], '{}', 'a', total_records => 281474976710657)$$,
    '22023', 'total_records must be at most 281474976710656: 281474976710657',
    'total_records past the bound (22023)');
SELECT throws_ok(format($$SELECT batchjob_create_followup(ARRAY[%s, %s], '{}', 'a')$$,
                        pg_temp.jid('a'), pg_temp.jid('a') + 100000),
    'P0002', format('job %s does not exist', pg_temp.jid('a') + 100000),
    'a job that does not exist (P0002)');
SELECT is((SELECT count(*) FROM batch_jobs WHERE criteria = '{}' AND created_by = 'a'), 0::bigint,
    'a refused call created nothing');
SELECT throws_ok($$SELECT batchjob_start_followups(NULL)$$, '22004',
    'job_id must not be null', 'batchjob_start_followups(NULL) (22004)');

/* ---- as a submitter, with tenant isolation ---- */

CREATE ROLE bjt_fu_alice;
CREATE ROLE bjt_fu_bob;
CREATE ROLE bjt_fu_worker;
SELECT batchjob_grant('bjt_fu_alice', 'submitter', max_priority => 5);
SELECT batchjob_grant('bjt_fu_bob', 'submitter');
SELECT batchjob_grant('bjt_fu_worker', 'worker');
INSERT INTO ids SELECT 'alice_job', job_id FROM batchjob_create_parent('{}', 'bjt_fu_alice');
INSERT INTO ids SELECT 'bob_job', job_id FROM batchjob_create_parent('{}', 'bjt_fu_bob');
GRANT SELECT ON ids TO bjt_fu_alice, bjt_fu_worker;
SET LOCAL batchjob.tenant_isolation = on;
SET ROLE bjt_fu_alice;
SELECT is((SELECT status FROM batchjob_create_followup(ARRAY[pg_temp.jid('alice_job')], '{}',
                                                       'bjt_fu_alice', priority => 5)),
          'PENDING', 'a submitter makes a follow-up of its own job');
SELECT throws_ok(format($$SELECT batchjob_create_followup(ARRAY[%s], '{}', 'bjt_fu_alice')$$,
                        pg_temp.jid('bob_job')),
    'P0002', format('job %s does not exist', pg_temp.jid('bob_job')),
    'isolation: another tenant''s job answers as a missing one (P0002)');
SELECT throws_ok(format($$SELECT batchjob_create_followup(ARRAY[%s], '{}', 'bjt_fu_bob')$$,
                        pg_temp.jid('alice_job')),
    '42501', 'permission denied to create jobs for tenant "bjt_fu_bob"',
    'isolation: a follow-up in another tenant''s name (42501)');
SELECT throws_ok(format($$SELECT batchjob_create_followup(ARRAY[%s], '{}', 'bjt_fu_alice', priority => 6)$$,
                        pg_temp.jid('alice_job')),
    '22023', 'priority must be at most 5 for role "bjt_fu_alice": 6',
    'a priority above the submitter''s ceiling (22023)');
SELECT throws_ok($$SELECT batchjob_start_followups(1)$$, '42501',
    'permission denied for function batchjob_start_followups',
    'a submitter may not call batchjob_start_followups (42501)');
RESET ROLE;
SET ROLE bjt_fu_worker;
SELECT throws_ok(format($$SELECT batchjob_create_followup(ARRAY[%s], '{}', 'bjt_fu_alice')$$,
                        pg_temp.jid('alice_job')),
    '42501', 'permission denied for function batchjob_create_followup',
    'a worker may not create follow-ups (42501)');
RESET ROLE;
SET LOCAL batchjob.tenant_isolation = off;

/* ---- batchjob_verify ---- */

SELECT is_empty('SELECT * FROM batchjob_verify()', 'verify: all of the above is healthy');

SELECT pg_temp.plain('t');
SELECT pg_temp.follow('ft', '{t}');
UPDATE batch_jobs SET has_followers = false WHERE job_id = pg_temp.jid('t');
SELECT results_eq('SELECT * FROM batchjob_verify()',
    format($$VALUES (%s::bigint, 'follow-up %s waits for it, but has_followers is false')$$,
           pg_temp.jid('t'), pg_temp.jid('ft')),
    'verify: a wait the waited-for job does not know of');
-- so its finish starts nothing: the follow-up is left waiting
SELECT pg_temp.fin('t', 'COMPLETED');
SELECT results_eq('SELECT * FROM batchjob_verify()',
    format($$VALUES (%s::bigint, 'follow-up %s waits for it, but has_followers is false'),
                    (%s::bigint, 'follow-up still waits for job %s, which is COMPLETED')$$,
           pg_temp.jid('t'), pg_temp.jid('ft'), pg_temp.jid('ft'), pg_temp.jid('t')),
    'verify: a follow-up still waiting behind a finished job');
SELECT is(batchjob_start_followups(pg_temp.jid('t')), 1::bigint,
    'batchjob_start_followups repairs it');
SELECT ok(pg_temp.started('ft'), '... the follow-up has started');

SELECT pg_temp.plain('u');
SELECT pg_temp.follow('fu', '{u}');
DELETE FROM batch_jobs WHERE job_id = pg_temp.jid('u');
SELECT results_eq('SELECT * FROM batchjob_verify()',
    format($$VALUES (%s::bigint, 'follow-up waits for job %s, which does not exist')$$,
           pg_temp.jid('fu'), pg_temp.jid('u')),
    'verify: a follow-up waiting for a deleted job');
SELECT is(batchjob_start_followups(pg_temp.jid('u')), 1::bigint,
    'batchjob_start_followups on a deleted job ...');
SELECT is(pg_temp.st('fu') || ': ' || pg_temp.why('fu'),
    format('CANCELLED: job %s, which it waited for, was deleted', pg_temp.jid('u')),
    '... cancels what waited for it');

UPDATE batch_job_followups SET done_at = now() WHERE job_id = pg_temp.jid('fr');
SELECT results_eq('SELECT * FROM batchjob_verify()',
    format($$VALUES (%s::bigint, 'follow-up waits for nothing any more but has not started')$$,
           pg_temp.jid('fr')),
    'verify: a follow-up whose waits are all done but that never started');
UPDATE batch_job_followups SET done_at = NULL WHERE job_id = pg_temp.jid('fr');
SELECT is_empty('SELECT * FROM batchjob_verify()', 'verify: healthy again');

/* ---- a follow-up is a plain job: it gets no children ---- */

SELECT pg_temp.plain('pw');
SELECT pg_temp.follow('fw', ARRAY['pw']);
SELECT throws_ok(format('SELECT batchjob_split(%s, 20, 10)', pg_temp.jid('fw')), '22023',
    format('job %s is not a parent job', pg_temp.jid('fw')),
    'a waiting follow-up cannot be split: it is a plain job (22023)');
SELECT throws_ok(format('SELECT batchjob_create_child(%s, 1, 0, 10)', pg_temp.jid('fw')), '22023',
    format('job %s is not a parent job', pg_temp.jid('fw')),
    'nor given a child (22023)');

/* ---- TRUNCATE ---- */

TRUNCATE batch_jobs;
SELECT is((SELECT count(*) FROM batch_job_followups), 0::bigint,
    'TRUNCATE batch_jobs empties batch_job_followups too');

SELECT * FROM finish();
ROLLBACK;
