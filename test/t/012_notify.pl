# test/t/012_notify.pl - the notifications of batchjob, which pgTAP cannot
# see (a NOTIFY is delivered at commit, to another session).
#
# A background psql session, of a role with no batchjob grant (anyone who
# can connect), LISTENs on batchjob_jobs_available and batchjob_parent_done
# for the whole run.  Each scenario runs in a session of its own, so the
# "received from server process with PID n" that psql prints for every
# notification says which scenario sent it.  Once every scenario has
# committed, one more session sends a NOTIFY on a channel of the test's
# own; notifications are delivered in commit order, so once the listener
# has that one it has everything the scenarios sent, and no wait is a
# matter of timing.
#
# The scenarios:
#   A   a parent and two children
#   B1  claims both, completes one (the parent keeps running)
#   B2  completes the other, finishing the parent
#   C   the same in one transaction, rolled back
#   D   a child failed with retries left (run_at in the future)
#   E   the same child claimed again and failed for good
#   F   batchjob_retry() of it;  G  batchjob_cancel() of its parent
#   H   batchjob_reap() of an expired lease
#   I   root > middle > leaf: completing the leaf finishes both parents
#   J   three children in one transaction
#   K   batchjob.tenant_isolation on: a finishing parent says that some
#       parent finished, not which one or how
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobSteps;
use Time::HiRes qw(time sleep);
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
# Each scenario runs alone, so each change folds in its own transaction and
# the notification comes from the scenario's session; as for the isolation
# specs, a folder that took a rollup over would make that a matter of
# timing.
$node->append_conf('postgresql.conf', "batchjob.defer_when_busy = off\n");
$node->start;

my $db = 'notify';
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION batchjob');
$node->safe_psql($db, 'CREATE ROLE bj_notify_nobody LOGIN');

my %vars = (tag => 'notify', prio => 2000000000);
my $end_channel = 'bj_notify_test_end';

# The listener.
my $listener = $node->background_psql($db,
	on_error_stop => 1,
	extra_params => [ '-U', 'bj_notify_nobody' ]);
$listener->query_safe(
	"LISTEN batchjob_jobs_available; LISTEN batchjob_parent_done; LISTEN $end_channel"
);
is( $listener->query_safe(
		"SELECT current_user || ': ' || string_agg(c, ', ' ORDER BY c) FROM pg_listening_channels() c"
	),
	"bj_notify_nobody: batchjob_jobs_available, batchjob_parent_done, $end_channel",
	'the listener, a role with no grant, is connected and LISTENing');

my $s = sub { return step($node, $db, shift, %vars); };

my $A = $s->(<<'SQL');
SELECT 'pid=' || pg_backend_pid();
SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "A"}', :'tag', :prio);
SELECT 'children=' || count(*)
  FROM batchjob_split((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag'), 20, 10);
SQL
my $P = $A->get('parent') || 0;

my $B1 = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
SELECT 1 / (coalesce((SELECT array_agg(job_id ORDER BY job_id) FROM batchjob_claim('notify', 2))
                     = (SELECT array_agg(job_id ORDER BY job_id) FROM batch_jobs WHERE parent_job_id = $P),
                     false))::int;
SELECT 'status=' || status FROM batchjob_complete((SELECT min(job_id) FROM batch_jobs WHERE parent_job_id = $P));
SQL
my $B2 = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
SELECT 'status=' || status FROM batchjob_complete((SELECT max(job_id) FROM batch_jobs WHERE parent_job_id = $P));
SELECT 'parent_status=' || status FROM batch_jobs WHERE job_id = $P;
SQL

my $C = $s->(<<'SQL');
SELECT 'pid=' || pg_backend_pid();
BEGIN;
SELECT NULL FROM batchjob_create_parent('{"notify": "C"}', :'tag', :prio);
SELECT NULL FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
SELECT NULL FROM batchjob_claim('notify', 1);
SELECT NULL FROM batchjob_complete((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag'));
SELECT 'parent_status=' || status FROM batch_jobs WHERE job_id = (SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent);
ROLLBACK;
SQL

my $D0 = $s->(<<'SQL');
SELECT 'pid=' || pg_backend_pid();
SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "D"}', :'tag', :prio);
SELECT 'child=' || job_id FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
SQL
my $P2 = $D0->get('parent') || 0;
my $C2 = $D0->get('child') || 0;
my $D = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
SELECT 1 / (coalesce((SELECT array_agg(job_id) FROM batchjob_claim('notify', 1)) = ARRAY[$C2]::bigint[], false))::int;
SELECT 'status=' || status || ' future=' || (run_at > clock_timestamp())
  FROM batchjob_fail($C2, 'try again');
SQL
my $E = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
UPDATE batch_jobs SET run_at = now() - interval '1 second' WHERE job_id = $C2;
SELECT 1 / (coalesce((SELECT array_agg(job_id) FROM batchjob_claim('notify', 1)) = ARRAY[$C2]::bigint[], false))::int;
SELECT 'status=' || status FROM batchjob_fail($C2, 'fatal', false);
SQL
my $F = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
SELECT 'status=' || status FROM batchjob_retry($C2);
SQL
my $G = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
SELECT 'cancelled=' || batchjob_cancel($P2);
SQL

my $H0 = $s->(<<'SQL');
SELECT 'pid=' || pg_backend_pid();
SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "H"}', :'tag', :prio);
SELECT 'child=' || job_id FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
SQL
my $P3 = $H0->get('parent') || 0;
my $C3 = $H0->get('child') || 0;
my $H1 = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
SELECT 1 / (coalesce((SELECT array_agg(job_id) FROM batchjob_claim('notify', 1)) = ARRAY[$C3]::bigint[], false))::int;
UPDATE batch_jobs SET locked_until = clock_timestamp() - interval '1 minute' WHERE job_id = $C3;
SQL
my $H = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
SELECT 'reaped=' || batchjob_reap();
SELECT 'status=' || status FROM batch_jobs WHERE job_id = $C3;
SQL
# H2: cancels that parent, so that its job is not claimed below
my $H2 = $s->(<<"SQL");
SELECT 'pid=' || pg_backend_pid();
SELECT 'cancelled=' || batchjob_cancel($P3);
SQL

my $I = $s->(<<'SQL');
SELECT 'pid=' || pg_backend_pid();
SELECT 'root=' || job_id FROM batchjob_create_parent('{"notify": "I"}', :'tag', :prio);
SELECT 'middle=' || job_id FROM batchjob_create_parent('{"notify": "I"}', :'tag', :prio,
        parent_job_id => (SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent));
SELECT 'leaf=' || job_id FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
SELECT 'claimed=' || job_id FROM batchjob_claim('notify', 1);
SELECT 'status=' || status FROM batchjob_complete((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag'));
SQL

my $J = $s->(<<'SQL');
SELECT 'pid=' || pg_backend_pid();
SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "J"}', :'tag', :prio);
SELECT 'children=' || count(*)
  FROM batchjob_split((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 30, 10);
SQL

my $K = $s->(<<'SQL');
SELECT 'pid=' || pg_backend_pid();
SET batchjob.tenant_isolation = on;
SELECT 'parent=' || job_id FROM batchjob_create_parent('{"notify": "K"}', :'tag', :prio + 1);
SELECT 'child=' || job_id FROM batchjob_create_child((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag' AND is_parent), 1, 0, 10);
SELECT 'claimed=' || job_id FROM batchjob_claim('notify', 1);
SELECT 'status=' || status FROM batchjob_complete((SELECT max(job_id) FROM batch_jobs WHERE created_by = :'tag'));
SQL

# The end marker, committed after every scenario: once the listener has it,
# it has everything sent before.  psql prints what arrived after the next
# command it runs; the wait is bounded.
$node->safe_psql($db, "NOTIFY $end_channel");
my $heard = '';
my $deadline = time + 30;
while ($heard !~ /^Asynchronous notification "$end_channel" received/m
	&& time < $deadline)
{
	$heard .= $listener->query_safe('SELECT 1') . "\n";
	sleep 0.05 if $heard !~ /"$end_channel"/;
}
$listener->quit;
note "the listener heard:\n$heard";
my @heard = grep { /^Asynchronous notification/ } split /\n/, $heard;

# How many notifications came from session $pid on $chan with $payload
# (undef: none; '*': any).
sub received
{
	my ($pid, $chan, $payload) = @_;
	my $from = qr/received from server process with PID \Q$pid\E\.$/;
	return scalar grep {
		/$from/ && (
			!defined $payload
			? $_ eq qq{Asynchronous notification "$chan" received from server process with PID $pid.}
			: $payload eq '*' ? /^Asynchronous notification "\Q$chan\E" /
			: $_ eq qq{Asynchronous notification "$chan" with payload "$payload" received from server process with PID $pid.}
		  )
	} @heard;
}
sub received_any { my ($pid) = @_; return scalar grep { /server process with PID \Q$pid\E\.$/ } @heard; }
sub from { my ($pid) = @_; return join("\n", grep { /PID \Q$pid\E\.$/ } @heard); }
sub done_payload { return sprintf('{"job_id": %s, "status": "%s"}', @_); }
sub ran { return $_[0]->ran && $_[0]->get('pid') ne ''; }

my %pid = map { $_->[0] => ($_->[1]->get('pid') || 'none') } (
	[ A => $A ], [ B1 => $B1 ], [ B2 => $B2 ], [ C => $C ], [ D => $D ], [ E => $E ],
	[ F => $F ], [ G => $G ], [ H => $H ], [ I => $I ], [ J => $J ], [ K => $K ]);

ok(ran($A), 'A: creating a parent and two children works') or diag $A->why;
is(received($pid{A}, 'batchjob_jobs_available', undef), 1,
	'A: new children send one batchjob_jobs_available (no payload)');
is(received($pid{A}, 'batchjob_parent_done', '*'), 0,
	'A: creating jobs sends no batchjob_parent_done');
ok(ran($B1) && received_any($pid{B1}) == 0,
	'B1: claiming and completing one of two children sends nothing')
  or diag $B1->why, from($pid{B1});
is(received($pid{B2}, 'batchjob_parent_done', done_payload($P, 'COMPLETED')), 1,
	qq{B2: completing the last child sends batchjob_parent_done {"job_id": $P, "status": "COMPLETED"} once})
  or diag $B2->why, from($pid{B2});
ok(ran($C) && $C->get('parent_status') eq 'COMPLETED' && received_any($pid{C}) == 0,
	'C: a transaction that finished a parent, then rolled back, sends nothing')
  or diag $C->why;
ok( ran($D)
	  && $D->get('status') eq 'PENDING future=true'
	  && received($pid{D}, 'batchjob_jobs_available', undef) == 0,
	'D: a failure with retries left (run_at in the future) sends no batchjob_jobs_available'
) or diag $D->why, $D->get('status');
is(received($pid{E}, 'batchjob_parent_done', done_payload($P2, 'FAILED')), 1,
	qq{E: a final failure of the only child sends batchjob_parent_done {"job_id": $P2, "status": "FAILED"}})
  or diag $E->why, from($pid{E});
ok(ran($E) && received($pid{E}, 'batchjob_jobs_available', undef) == 0,
	'E: moving run_at of a PENDING job, claiming and failing for good send no batchjob_jobs_available'
);
ok(ran($F) && received($pid{F}, 'batchjob_jobs_available', undef) == 1,
	'F: batchjob_retry() sends batchjob_jobs_available')
  or diag $F->why;
is(received($pid{F}, 'batchjob_parent_done', '*'), 0,
	'F: the reopened parent sends no batchjob_parent_done');
is(received($pid{G}, 'batchjob_parent_done', done_payload($P2, 'CANCELLED')), 1,
	qq{G: cancelling the parent sends batchjob_parent_done {"job_id": $P2, "status": "CANCELLED"}})
  or diag $G->why, from($pid{G});
ok( ran($H1) && ran($H)
	  && $H->get('status') eq 'PENDING'
	  && received($pid{H}, 'batchjob_jobs_available', undef) == 1,
	'H: batchjob_reap() putting a job back to PENDING sends batchjob_jobs_available'
) or diag $H1->why, $H->why, $H->get('reaped');
my ($MID, $ROOT) = ($I->get('middle'), $I->get('root'));
is(received($pid{I}, 'batchjob_parent_done', done_payload($MID, 'COMPLETED')), 1,
	'I: the middle parent of a nested tree sends its batchjob_parent_done')
  or diag $I->why, from($pid{I});
is(received($pid{I}, 'batchjob_parent_done', done_payload($ROOT, 'COMPLETED')), 1,
	'I: ... and so does the root');
is(received($pid{I}, 'batchjob_parent_done', '*'), 2,
	'I: exactly two batchjob_parent_done for the two parents');
ok(ran($J) && $J->get('children') eq '3', 'J: a split into three children works')
  or diag $J->why;
is(received($pid{J}, 'batchjob_jobs_available', undef), 1,
	'J: three new children in one transaction send one batchjob_jobs_available')
  or diag from($pid{J});
ok(ran($K) && $K->get('status') eq 'COMPLETED',
	'K: with tenant isolation on, a parent finishes as usual')
  or diag $K->why;
is(received($pid{K}, 'batchjob_parent_done', undef), 1,
	'K: with tenant isolation on, its batchjob_parent_done comes once, without a payload')
  or diag from($pid{K});
is(received($pid{K}, 'batchjob_parent_done', '*'), 1,
	'K: ... and no other batchjob_parent_done names the job');

$node->stop('fast');
done_testing();
