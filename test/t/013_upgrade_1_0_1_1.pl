# test/t/013_upgrade_1_0_1_1.pl - the 1.0 -> 1.1 -> 1.2 upgrades of
# batchjob.
#
# Installs batchjob 1.0 in a database of its own and fills it through the
# 1.0 functions and plain SQL (parents, split children in every status).
# Then, in a session that has used the 1.0 functions, it takes a checksum of
# every row's 1.0 columns, runs ALTER EXTENSION batchjob UPDATE TO '1.1',
# and checks that:
#   - no row was lost, changed or rewritten, and the new columns hold their
#     defaults;
#   - the upgraded extension is made of the same objects, columns,
#     constraints, indexes, triggers, functions and privileges as a fresh
#     1.1 install in a second database (test/t/upgrade_shape.sql);
#   - the 1.1 functions work on the 1.0 rows (claim, progress, complete,
#     retry; the 1.0 parent rolls up exactly), and the old four-argument
#     batchjob_create_parent call still works;
#   - ALTER EXTENSION batchjob UPDATE TO '1.2' replaces the worker functions
#     with their 1.2 forms (claims that identify their holder): the roles
#     batchjob_grant gave the old forms may execute the new ones, callers of
#     the 1.1 forms keep working, a stale attempt is refused, and the result
#     is the same as a fresh 1.2 install;
#   - DROP EXTENSION then leaves nothing behind.
# Each step is a session of its own (BatchjobSteps.pm); the upgrade to 1.1
# runs in the session that used the 1.0 functions.  011_upgrade_1_2.pl
# covers 1.1 -> 1.2 with differences waiting in batch_job_deltas.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobSteps;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade_1_0');
$node->init;
$node->start;

my $DB = 'bj_upgrade';
my $FRESH = 'bj_upgrade_fresh';
my $WROLE = 'bj_upgrade_worker';
$node->safe_psql('postgres', "CREATE DATABASE $DB");
$node->safe_psql('postgres', "CREATE DATABASE $FRESH");

my $step = sub { my ($sql, $db) = @_; return step($node, $db // $DB, $sql); };
# One value, in a session of its own; errors end the test.
my $q = sub { my ($sql, $db) = @_; return $node->safe_psql($db // $DB, $sql); };
# The shape of $db's batchjob (test/t/upgrade_shape.sql), one line each;
# an error is kept as a line of its own, so that the comparison fails.
my $shape = PostgreSQL::Test::Utils::slurp_file("$FindBin::RealBin/upgrade_shape.sql");
sub shape_of
{
	my ($db) = @_;
	my $s = step($node, $db, $shape);
	return $s->ran ? split(/\n/, $s->out) : ("error in $db: " . $s->why);
}

# every row over the 1.0 columns, one line each, and their checksum
my $cols10 = q{job_id, status, criteria, total_records, processed_records,
    success_count, error_count, error_details, created_by, priority,
    is_parent, parent_job_id, batch_number, batch_offset, batch_size,
    child_pending, child_processing, child_completed, child_failed,
    child_cancelled, created_at, updated_at, started_at, completed_at};
sub rows10
{
	my ($prefix) = @_;
	return "SELECT '${prefix}_row=' || ($cols10)::text FROM batch_jobs ORDER BY job_id;\n"
	  . "SELECT '${prefix}_sum=' || md5(string_agg(($cols10)::text, E'\\n' ORDER BY job_id))\n"
	  . "       || ' rows ' || count(*) FROM batch_jobs;";
}

# The lines only one of two listings has, for a diagnostic.
sub differ
{
	my ($a, $b) = @_;
	my (%a, %b);
	$a{$_}++ for @$a;
	$b{$_}++ for @$b;
	return join("\n",
		(map { "- $_" } grep { !$b{$_} } @$a),
		(map { "+ $_" } grep { !$a{$_} } @$b));
}

# ---- 1.0 ----

my $install = $step->(<<'SQL');
CREATE EXTENSION batchjob VERSION '1.0';
SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'batchjob';
SELECT 'new_things=' || (SELECT count(*) FROM pg_attribute
                          WHERE attrelid = 'batch_jobs'::regclass AND attname = 'run_at')
       || ',' || (SELECT count(*) FROM pg_proc WHERE proname = 'batchjob_claim');
SQL
is($install->get('version'), '1.0', "CREATE EXTENSION batchjob VERSION '1.0' installs 1.0")
  or diag $install->why;
is($install->get('new_things'), '0,0', '1.0 has neither the run_at column nor batchjob_claim');

# P1 (priority 5): 4 split children: PROCESSING (10 done), COMPLETED (30:
#   28 ok, 2 errors), FAILED, PENDING
# P2: no children, total 50
# P3: 2 children, both COMPLETED;  P4: 2 children, both CANCELLED
# P5: 2 children, COMPLETED and FAILED (partial success)
# lone: a PENDING job without parent, priority 3, inserted by plain SQL
my $fill = $step->(<<'SQL');
CREATE TEMP TABLE p AS
SELECT (batchjob_create_parent('{"p": 1}', 'alice', 5)).job_id AS p1,
       (batchjob_create_parent('{"p": 2}', 'bob', 0, 50)).job_id AS p2,
       (batchjob_create_parent('{"p": 3}', 'carol', 0)).job_id AS p3,
       (batchjob_create_parent('{"p": 4}', 'carol', 0)).job_id AS p4,
       (batchjob_create_parent('{"p": 5}', 'dave', 0)).job_id AS p5;
SELECT count(*) FROM p, batchjob_split(p1, 100, 30);
SELECT count(*) FROM p, batchjob_create_child(p3, 1, 0, 10);
SELECT count(*) FROM p, batchjob_create_child(p3, 2, 10, 10, '{"own": true}');
SELECT count(*) FROM p, batchjob_split(p4, 20, 10);
SELECT count(*) FROM p, batchjob_split(p5, 20, 10);
UPDATE batch_jobs SET status = 'PROCESSING', processed_records = 10, success_count = 10
 WHERE parent_job_id = (SELECT p1 FROM p) AND batch_number = 1;
UPDATE batch_jobs SET status = 'PROCESSING'
 WHERE parent_job_id = (SELECT p1 FROM p) AND batch_number IN (2, 3);
UPDATE batch_jobs SET status = 'COMPLETED', processed_records = 30, success_count = 28,
       error_count = 2
 WHERE parent_job_id = (SELECT p1 FROM p) AND batch_number = 2;
UPDATE batch_jobs SET status = 'FAILED', error_details = 'disk full'
 WHERE parent_job_id = (SELECT p1 FROM p) AND batch_number = 3;
UPDATE batch_jobs SET status = 'COMPLETED', processed_records = total_records,
       success_count = total_records
 WHERE parent_job_id = (SELECT p3 FROM p);
UPDATE batch_jobs SET status = 'CANCELLED' WHERE parent_job_id = (SELECT p4 FROM p);
UPDATE batch_jobs SET status = CASE batch_number WHEN 1 THEN 'COMPLETED' ELSE 'FAILED' END,
       error_details = CASE batch_number WHEN 2 THEN 'bad input' END
 WHERE parent_job_id = (SELECT p5 FROM p);
INSERT INTO batch_jobs (status, criteria, created_by, priority)
VALUES ('PENDING', '{"lone": true}', 'erin', 3);
SELECT 'p1=' || p1 FROM p;
SELECT 'p2=' || p2 FROM p;
SELECT 'p4=' || p4 FROM p;
SELECT 'p5=' || p5 FROM p;
SELECT 'lone=' || max(job_id) FROM batch_jobs;
SELECT 'statuses=' || string_agg(status, ',' ORDER BY job_id)
  FROM batch_jobs, p WHERE job_id IN (p1, p2, p3, p4, p5);
SELECT 'p1_figures=' || concat_ws(',', child_pending, child_processing, child_completed,
       child_failed, child_cancelled, total_records, processed_records, success_count,
       error_count) FROM batch_jobs, p WHERE job_id = p1;
SELECT 'p5_error=' || error_details FROM batch_jobs, p WHERE job_id = p5;
SQL
my ($P1, $P2, $P4, $P5, $LONE) = map { $fill->get($_) || 0 } qw(p1 p2 p4 p5 lone);
my $child = sub {
	my ($p, $n) = @_;
	return $q->("SELECT job_id FROM batch_jobs WHERE parent_job_id = $p AND batch_number = $n")
	  || 0;
};
my ($C1, $C3, $C4) = map { $child->($P1, $_) } (1, 3, 4);
is($fill->get('statuses'), 'PROCESSING,PENDING,COMPLETED,CANCELLED,COMPLETED',
	'1.0 data: parents in every derived status')
  or diag $fill->why;
is($fill->get('p1_figures'), '1,1,1,1,0,100,40,38,2',
	'1.0 data: P1 counts one child in each of four statuses, and their records');
is($fill->get('p5_error'), '1 out of 2 batch jobs failed', '1.0 data: P5 is a partial success');

# ---- the upgrade, in a session that has used the 1.0 functions ----

my $before = rows10('before');
my $after = rows10('after');
my $upgrade = $step->(<<"SQL");
SELECT 'next=' || job_id FROM batchjob_next_pending();
SELECT 'refresh=' || status FROM batchjob_refresh_parent($P1);
SELECT 'filenode=' || pg_relation_filenode('batch_jobs');
$before
SELECT 'clock_before=' || clock_timestamp();
ALTER EXTENSION batchjob UPDATE TO '1.1';
SELECT 'clock_after=' || clock_timestamp();
SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'batchjob';
SELECT 'after_filenode=' || pg_relation_filenode('batch_jobs');
$after
SELECT 'defaults=' || count(*) FILTER (WHERE locked_by IS NULL
                                         AND (locked_until IS NULL) <> (status = 'PROCESSING' AND NOT is_parent)
                                         AND attempts = 0 AND max_attempts = 3
                                         AND on_child_failure = 'continue')
       || '/' || count(*) FROM batch_jobs;
SELECT 'leases=' || count(*) FILTER (WHERE locked_until BETWEEN clock_timestamp() + interval '4 minutes' AND clock_timestamp() + interval '5 minutes')
       || '/' || count(*) FROM batch_jobs WHERE status = 'PROCESSING' AND NOT is_parent;
SELECT 'run_at=' || count(DISTINCT run_at) || ',' || bool_and(run_at IS NOT NULL)
  FROM batch_jobs;
SELECT 'run_at_value=' || min(run_at) FROM batch_jobs;
-- the 1.1 functions, still in this session
SELECT 'claimed=' || string_agg(job_id::text, ',') FROM batchjob_claim('upgrader', 1);
SELECT 'p1_counts=' || child_pending || ',' || child_processing || ',' || status
  FROM batch_jobs WHERE job_id = $P1;
SQL
is($upgrade->get('version'), '1.1',
	"ALTER EXTENSION batchjob UPDATE TO '1.1' succeeds in a session that used the 1.0 functions")
  or diag $upgrade->why;
is($upgrade->get('next'), $C4,
	"before the upgrade, batchjob_next_pending (1.0) names P1's PENDING child");
is($upgrade->get('refresh'), 'PROCESSING',
	'before the upgrade, batchjob_refresh_parent (1.0) agrees with the stored P1');
is($upgrade->get('after_filenode'), $upgrade->get('filenode'),
	'the upgrade does not rewrite batch_jobs');
is($upgrade->get('after_sum'), $upgrade->get('before_sum'),
	'every row keeps every 1.0 value (checksum over the 1.0 columns)')
  or diag differ([ $upgrade->all('before_row') ], [ $upgrade->all('after_row') ]);
is(($upgrade->get('after_sum') =~ / rows (\d+)$/)[0] // '', '16',
	'no row is lost or added (16 rows)');
is($upgrade->get('defaults'), '16/16',
	'old rows get the defaults: no worker, a lease only if PROCESSING, attempts 0, max_attempts 3, on_child_failure continue'
);
my ($leased, $processing) = split m{/}, $upgrade->get('leases') . '/';
is("$leased/$processing", "$processing/$processing",
	"every leaf left PROCESSING by 1.0 ($leased/$processing) gets a 5-minute lease, so batchjob_reap() can take it back"
);
is($upgrade->get('run_at'), '1,true', 'old rows share one run_at, the time of the upgrade');
my ($run_at, $clock_before, $clock_after) =
  map { $upgrade->get($_) } qw(run_at_value clock_before clock_after);
my $within = $step->(
	"SELECT 'within=' || ('$run_at'::timestamptz BETWEEN '$clock_before'::timestamptz AND '$clock_after')"
);
is($within->get('within'), 'true', '... taken while the upgrade ran') or diag $within->why;
is($upgrade->get('claimed'), $C4,
	'batchjob_claim in the upgrading session takes the 1.0 PENDING child of the highest priority');
is($upgrade->get('p1_counts'), '0,2,PROCESSING',
	'... and the 1.0 parent counts it as PROCESSING (rollup, same session)');

# ---- upgraded == fresh ----

my $fresh = $step->(<<'SQL', $FRESH);
CREATE EXTENSION batchjob VERSION '1.1';
SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'batchjob';
SQL
is($fresh->get('version'), '1.1',
	"a fresh CREATE EXTENSION batchjob VERSION '1.1' installs 1.1")
  or diag $fresh->why;
my @upgraded = shape_of($DB);
my @fresh = shape_of($FRESH);
ok(@fresh && join("\n", @upgraded) eq join("\n", @fresh),
	'the upgraded extension has the same objects, columns, constraints, indexes, triggers, functions, privileges and comments as a fresh 1.1 ('
	  . scalar(@fresh)
	  . ' items)')
  or diag differ(\@upgraded, \@fresh);

# ---- the 1.1 functions on 1.0 rows, in a new session ----

my $work = $step->(<<"SQL");
SELECT 'progress=' || processed_records FROM batchjob_progress($C4, 10, 9, 1);
SELECT 'p1_sums=' || processed_records || ',' || success_count || ',' || error_count
  FROM batch_jobs WHERE job_id = $P1;
SELECT 'c4=' || status FROM batchjob_complete($C4);
SELECT 'c1=' || status || ',' || (locked_by IS NULL) FROM batchjob_complete($C1);
SELECT 'p1_done=' || status || ',' || coalesce(error_details, '-') || ','
       || (completed_at IS NOT NULL)
  FROM batch_jobs WHERE job_id = $P1;
SELECT 'retried=' || status || ',' || attempts FROM batchjob_retry($C3);
SELECT 'p1_reopened=' || status || ',' || (completed_at IS NULL) FROM batch_jobs WHERE job_id = $P1;
SELECT 'claim2=' || string_agg(job_id::text, ',') FROM batchjob_claim('upgrader', 1);
SELECT 'c3=' || status FROM batchjob_complete($C3);
SELECT 'p1_final=' || concat_ws(',', status, coalesce(error_details, '-'), child_pending,
       child_processing, child_completed, child_failed, child_cancelled, total_records,
       processed_records, success_count, error_count)
  FROM batch_jobs WHERE job_id = $P1;
SELECT 'p1_refreshed=' || concat_ws(',', status, coalesce(error_details, '-'), child_pending,
       child_processing, child_completed, child_failed, child_cancelled, total_records,
       processed_records, success_count, error_count)
  FROM batchjob_refresh_parent($P1);
SELECT 'claim3=' || string_agg(job_id::text, ',') FROM batchjob_claim('upgrader', 5);
SELECT 'lone=' || status FROM batchjob_complete($LONE);
SELECT 'old_call=' || concat_ws(',', on_child_failure, coalesce(parent_job_id::text, '-'),
       priority, total_records, status)
  FROM batchjob_create_parent('{"after": "upgrade"}', 'frank', 2, 40);
SELECT 'old_split=' || count(*) FROM batchjob_split((SELECT max(job_id) FROM batch_jobs), 40, 20);
SELECT 'new_call=' || concat_ws(',', on_child_failure, parent_job_id = $P2)
  FROM batchjob_create_parent('{"after": "upgrade"}', 'frank', 0, NULL, 'fail_fast', $P2);
SELECT 'view=' || (SELECT count(*) FROM batch_job_progress) || '/'
       || (SELECT count(*) FROM batch_jobs WHERE is_parent);
SELECT 'view_p4=' || status || ',' || (estimated_finish = (SELECT completed_at FROM batch_jobs
                                                            WHERE job_id = $P4))
  FROM batch_job_progress WHERE job_id = $P4;
SQL
is($work->get('p1_sums'), '50,47,3',
	'batchjob_progress on the claimed 1.0 child rolls up to the 1.0 parent (40 -> 50 records)')
  or diag $work->why;
is($work->get('c4'), 'COMPLETED', 'batchjob_complete completes the claimed 1.0 child');
is($work->get('c1'), 'COMPLETED,true',
	'batchjob_complete also completes a child left PROCESSING by 1.0');
is($work->get('p1_done'), 'COMPLETED,1 out of 4 batch jobs failed,true',
	'the 1.0 parent finishes a partial success');
is($work->get('retried'), 'PENDING,0',
	'batchjob_retry puts the child FAILED under 1.0 back to PENDING');
is($work->get('p1_reopened'), 'PROCESSING,true', '... and reopens the 1.0 parent');
is($work->get('claim2'), $C3, 'the retried child is claimed next (priority 5)');
is($work->get('p1_final'), 'COMPLETED,-,0,0,4,0,0,100,50,47,3',
	'the 1.0 parent ends COMPLETED with exact counts and sums');
is($work->get('p1_refreshed'), $work->get('p1_final'),
	'batchjob_refresh_parent recomputes exactly what the rollup kept across the upgrade');
is($work->get('claim3'), $LONE, 'the lone 1.0 job is claimable, and is the only one left');
is($work->get('lone'), 'COMPLETED', '... and completes');
is($work->get('old_call'), 'continue,-,2,40,PENDING',
	'the 1.0 four-argument batchjob_create_parent call still works, with on_child_failure continue'
);
is($work->get('old_split'), '2', 'batchjob_split still works after the upgrade');
is($work->get('new_call'), 'fail_fast,t',
	'the six-argument call nests a fail_fast parent under a 1.0 parent');
my ($in_view, $parents) = split m{/}, $work->get('view') . '/';
is("$in_view/$parents", "$parents/$parents",
	'batch_job_progress has one row per parent, 1.0 parents included');
is($work->get('view_p4'), 'CANCELLED,true',
	'batch_job_progress shows a 1.0 CANCELLED parent finished at its completed_at');

# ---- 1.1 -> 1.2: claims that identify their holder ----

my $OLD12 = q{'batchjob_heartbeat(bigint, text, interval)', 'batchjob_progress(bigint, bigint, bigint, bigint, text)',
       'batchjob_complete(bigint, text)', 'batchjob_fail(bigint, text, boolean, text)',
       'batchjob_complete(bigint[])', 'batchjob_fail(bigint[], text, boolean)'};
my $NEW12 = q{'batchjob_heartbeat(bigint, text, interval, integer)',
       'batchjob_progress(bigint, bigint, bigint, bigint, text, integer)',
       'batchjob_complete(bigint, text, integer)', 'batchjob_fail(bigint, text, boolean, text, integer)',
       'batchjob_complete(bigint[], text)', 'batchjob_fail(bigint[], text, boolean, text)'};

# a worker role given access under 1.1; two jobs claimed under 1.1, one
# heartbeat through the 1.1 signature (served by the 1.2 library)
my $pre12 = $step->(<<"SQL");
CREATE ROLE "$WROLE";
SELECT batchjob_grant('$WROLE', 'worker');
CREATE TEMP TABLE x AS SELECT job_id FROM batchjob_claim('w11', 2);
SELECT 'x1=' || min(job_id) FROM x;
SELECT 'x2=' || max(job_id) FROM x;
SELECT 'hb11=' || batchjob_heartbeat(max(job_id), 'w11') FROM x;
SQL
my ($X1, $X2) = map { $pre12->get($_) || 0 } qw(x1 x2);
is($pre12->get('hb11'), 'true',
	'before the 1.2 update, the 1.1 heartbeat signature works with the 1.2 library')
  or diag $pre12->why;

my $up12 = $step->(<<"SQL");
ALTER EXTENSION batchjob UPDATE TO '1.2';
SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'batchjob';
SELECT 'sigs=' || (SELECT count(*) FROM unnest(ARRAY[$NEW12]) s WHERE to_regprocedure(s) IS NOT NULL)
       || ',' || (SELECT count(*) FROM unnest(ARRAY[$OLD12]) s WHERE to_regprocedure(s) IS NOT NULL);
SELECT 'granted=' || count(*) FILTER (WHERE has_function_privilege('$WROLE', s, 'EXECUTE'))
  FROM unnest(ARRAY[$NEW12]) s;
SELECT 'old_complete=' || status FROM batchjob_complete($X1, 'w11');
SELECT 'old_progress=' || processed_records FROM batchjob_progress($X2, 5, 5, 0, 'w11');
SELECT 'old_heartbeat=' || batchjob_heartbeat($X2, 'w11');
SQL
is($up12->get('version'), '1.2', "ALTER EXTENSION batchjob UPDATE TO '1.2' succeeds")
  or diag $up12->why;
is($up12->get('sigs'), '6,0',
	'1.2 has the six worker functions with their new trailing argument, and none of the 1.1 forms');
is($up12->get('granted'), '6',
	'a role batchjob_grant made a worker under 1.1 may execute all six new forms');
is($up12->get('old_complete'), 'COMPLETED',
	'the 1.1 two-argument batchjob_complete(job_id, worker) call still works');
is($up12->get('old_progress') . ',' . $up12->get('old_heartbeat'), '5,true',
	'the 1.1 calls of batchjob_progress and batchjob_heartbeat with a worker still work');

# the zombie: X2's lease expires, it is reaped and claimed again by w11
my $zombie12 = $step->(<<"SQL");
CREATE FUNCTION pg_temp.state_of(text) RETURNS text LANGUAGE plpgsql
    AS \$\$BEGIN EXECUTE \$1; RETURN 'ok';
    EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END\$\$;
SET ROLE "$WROLE";
SELECT 'unnamed=' || pg_temp.state_of('SELECT batchjob_complete($X2)');
RESET ROLE;
UPDATE batch_jobs SET locked_until = clock_timestamp() - interval '1 minute' WHERE job_id = $X2;
SELECT 'reaped=' || batchjob_reap();
SELECT 'again=' || attempts FROM batchjob_claim('w11');
SELECT 'stale=' || pg_temp.state_of('SELECT batchjob_complete($X2, ''w11'', 1)');
SELECT 'current=' || status FROM batchjob_complete($X2, 'w11', 2);
SQL
is($zombie12->get('unnamed'), '55000',
	'after the update, a worker role that names no worker is refused (55000)')
  or diag $zombie12->why;
is(join(',', map { $zombie12->get($_) } qw(reaped again stale current)),
	'1,2,55000,COMPLETED',
	'a reaped and reclaimed job refuses attempt 1 (55000) and completes for attempt 2');

# upgraded == fresh 1.2 (once the role's grants are taken back)
my $revoke = $step->("SELECT batchjob_revoke('$WROLE')");
my $fresh12 = $step->('DROP EXTENSION batchjob; CREATE EXTENSION batchjob', $FRESH);
my @upgraded12 = shape_of($DB);
my @fresh12 = shape_of($FRESH);
ok($revoke->ran && $fresh12->ran && @fresh12
	  && join("\n", @upgraded12) eq join("\n", @fresh12),
	'the extension updated to 1.2 is the same as a fresh 1.2 install ('
	  . scalar(@fresh12)
	  . ' items)')
  or diag $revoke->why, $fresh12->why, differ(\@upgraded12, \@fresh12);

# ---- DROP EXTENSION ----

my $drop = $step->(<<'SQL');
DROP EXTENSION batchjob;
SELECT 'left=' || (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace
                    AND relname LIKE 'batch%')
       || ',' || (SELECT count(*) FROM pg_proc WHERE proname LIKE 'batchjob%');
SQL
is($drop->get('left'), '0,0',
	'DROP EXTENSION after the upgrade leaves no table, view, sequence or function')
  or diag $drop->why;

$node->stop('fast');
done_testing();
