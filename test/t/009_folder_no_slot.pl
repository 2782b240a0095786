# test/t/009_folder_no_slot.pl - with no background worker slot free, a
# transaction that deferred a difference folds it itself before it commits
# (src/fold.c, make_sure_of_folder), so nothing waits for a slot.
#
# The node runs with max_worker_processes = 0: no folder can ever start.
#   1. busy lock held by another session: the difference is deferred, and
#      the committing transaction folds it (the parent's right is free);
#   2. the parent's right held by another session: the commit waits for the
#      right like a plain UPDATE of the parent would, and folds once that
#      session ends.
# Either way the parent finishes with no further child change, and
# batchjob_parent_done comes once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobFolder;
use Test::More;

my $node = folder_node('no_slot', 'max_worker_processes = 0',
	'max_logical_replication_workers = 0', 'max_parallel_workers = 0');
my $db = new_db($node, 'bj_no_slot');
my $q = sub { $node->safe_psql($db, quiet_sql() . '; ' . shift) };
is($q->('SHOW max_worker_processes'), '0', 'no background worker slot at all');
my $listen = listener($node, $db);

# 1. deferred because the folder is "busy"
{
	my ($p, $last) = parent_with_last_child($node, $db, 'busy', 2);
	my $h = $node->background_psql($db, on_error_stop => 1);
	is($h->query_safe('SELECT batchjob_hold_folder_busy(true)'), 't',
		'1: another session holds the busy lock');
	is($q->("BEGIN;
		SELECT status FROM batchjob_complete($last);
		SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $p;
		COMMIT;"), "COMPLETED\n1", '1: the last completion defers its difference');
	parent_settled_ok($node, $db, $p, 'COMPLETED', '1');
	notifications_ok($listen, $p, 'COMPLETED', '1');
	is(folder_count($node), '0', '1: no folder ever ran');
	$h->quit;
	verify_empty($node, $db, '1');
}

# 2. deferred because another session holds the parent's right
{
	my ($p, $last) = parent_with_last_child($node, $db, 'right', 2);
	my $a = hold_rights($node, $db, $p);
	my $b = $node->background_psql($db, on_error_stop => 1);
	$b->query_safe(quiet_sql());
	my $bpid = $b->query_safe('SELECT pg_backend_pid()');
	# not waited for: its commit waits for the right
	$b->{stdin} .= "SELECT status FROM batchjob_complete($last);\n\\echo done-2\n";
	$b->{run}->pump_nb;
	ok(poll($node, $db, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $bpid", 30),
		"2: the committing session waits for the parent's right");
	is(deltas($node, $db, $p), '0', '2: its difference is not committed yet');
	release($a);
	$b->{run}->pump until $b->{stdout} =~ /done-2/ || $b->{timeout}->is_expired;
	like($b->{stdout}, qr/COMPLETED/, '2: its commit goes through once the right is free');
	$b->{stdout} = '';
	parent_settled_ok($node, $db, $p, 'COMPLETED', '2');
	notifications_ok($listen, $p, 'COMPLETED', '2');
	$b->quit;
	verify_empty($node, $db, '2');
}
$listen->quit;

$node->stop;
done_testing();
