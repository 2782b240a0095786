# test/t/010_folder_open_transaction.pl - a transaction that stays open
# after touching batch_job_deltas (a worker that claimed a job and works on
# it inside its transaction) must not make folders pile up.
#
# A folder about to leave releases its lock and then waits for every
# transaction still holding a lock on batch_job_deltas before its last
# sweep (src/fold.c, the file header's "Liveness").  Were it to go quiet
# while such a transaction stays open, each quiet spell would leave one
# folder waiting, and the next deferred difference would start another
# beside it, each holding a background worker slot until, with
# max_worker_processes taken, nothing else (parallel workers, other
# extensions, logical replication) got one.  So the folder stays.
#
# Three times: a difference is deferred (another session holds the
# parent's right) and folded once that session ends; past the folder's
# quiet spell, one folder remains, holding its lock.  Once the transaction
# commits, the folder leaves.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobFolder;
use Test::More;
use Time::HiRes qw(sleep);

my $node = folder_node('open_transaction');
my $db = new_db($node, 'bj_open');
my $q = sub { $node->safe_psql($db, quiet_sql() . '; ' . shift) };

# The parent whose differences are deferred (its last child PROCESSING),
# and the worker's parent.
my ($p, $last) = parent_with_last_child($node, $db, 'deferred', 2);
my $w = $q->(q{SELECT job_id FROM batchjob_create_parent('{}', 'worker')});
$q->("SELECT count(*) FROM batchjob_split($w, 100, 10)");

my $t = $node->background_psql($db, on_error_stop => 1);
$t->query_safe(quiet_sql());
$t->query_safe('BEGIN');
like($t->query_safe(q{SELECT parent_job_id FROM batchjob_claim('long', 1)}), qr/^$w$/,
	'a worker claims a job inside a transaction it keeps open');

my $folder_lock_held = q{
	SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
	   AND classid = x'62617463'::int::oid AND objsubid = 5 AND granted};
for my $k (1 .. 3)
{
	# progress of the last child, its difference deferred
	my $a = hold_rights($node, $db, $p);
	$q->("SELECT status FROM batchjob_progress($last, $k, $k, 0)");
	is(deltas($node, $db, $p), '1', "round $k: a difference waits");
	release($a);
	parent_settled_ok($node, $db, $p, 'PROCESSING', "round $k");
	# past the folder's quiet spell (2 s): no assertion on time, only
	# on what must hold after it
	sleep 2.5;
	is($q->($folder_lock_held) . ' ' . folder_count($node, $db), '1 1',
		"round $k: one folder, holding its lock, stays while the transaction is open");
}

$t->query_safe('COMMIT');
$t->quit;
ok(poll($node, 'postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'batchjob folder'}, 30),
	'once it commits, every folder leaves');
parent_settled_ok($node, $db, $w, 'PROCESSING', 'the worker\'s parent');
verify_empty($node, $db, 'open transaction');

$node->stop;
done_testing();
