# test/t/020_rollup_slots.pl - the hand-off by rate (src/fold.c, "The
# rollup slots"): a transaction that rolls up takes one of two rollup slots
# without waiting and holds it to its end; a third transaction rolling up
# while both are held leaves its difference to the folder, as under a busy
# folder, and a session working alone, or with one other, folds at once.
#
# The crowd is forced, not hoped for under load: two background sessions
# complete a child each in open transactions, so they hold both slots for
# as long as the test needs.  Then:
#  (a) each of them sees its own change in its parent's stored row, and
#      pg_locks shows the two slots (objsubid 7 and 8) held;
#  (b) a third transaction's change waits in batch_job_deltas (its own
#      transaction sees it there, the exact reads count it), its parent's
#      stored row does not show it;
#  (c) unless that session sets batchjob.defer_when_busy off;
#  (d) once one of the two commits, a new transaction gets its slot and
#      folds at once;
#  (e) after all commit and batchjob_fold(), nothing waits, every stored
#      row is its children's and batchjob_verify() is empty.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobFolder;
use Test::More;

my $node = folder_node('slots');
my $db = new_db($node, 'bj_slots');
my $q = sub { $node->safe_psql($db, shift) };

# Five parents of one PROCESSING child each.
my @parent;
my @child;
for my $i (0 .. 4)
{
	$parent[$i] = $q->(q{SELECT job_id FROM batchjob_create_parent('{}', 'slots')});
	$q->("SELECT count(*) FROM batchjob_split($parent[$i], 10, 10)");
	$child[$i] = $q->("SELECT job_id FROM batch_jobs WHERE parent_job_id = $parent[$i]");
}
$q->('UPDATE batch_jobs SET status = $$PROCESSING$$ WHERE NOT is_parent');
is($q->('SELECT count(*) FROM batch_job_deltas'), '0', 'nothing waits at the start');

my $slots_held = q{
	SELECT string_agg(l.objsubid::text, ',' ORDER BY l.objsubid)
	  FROM pg_locks l JOIN pg_database d ON d.oid = l.database
	 WHERE d.datname = current_database() AND l.locktype = 'advisory'
	   AND l.classid = x'62617463'::int::oid AND l.objid = x'686a6f62'::int::oid
	   AND l.objsubid IN (7, 8) AND l.granted};

# the stored completed count of a parent, and its differences waiting
my $seen = sub {
	my ($p) = @_;
	return qq{SELECT (SELECT child_completed FROM batch_jobs WHERE job_id = $p)
	                 || '/' || (SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $p)};
};
my $complete = sub { "UPDATE batch_jobs SET status = 'COMPLETED' WHERE job_id = $_[0]" };

# (a) two sessions, each alone on its parent, fold at once and hold a slot
my @s;
for my $i (0, 1)
{
	$s[$i] = $node->background_psql($db, on_error_stop => 1);
	$s[$i]->query_safe(quiet_sql());
	$s[$i]->query_safe('BEGIN');
	$s[$i]->query_safe($complete->($child[$i]));
	is($s[$i]->query_safe($seen->($parent[$i])), '1/0',
		"session $i: its change is in its parent's stored row at once");
}
is($q->($slots_held), '7,8', 'pg_locks shows both rollup slots held');

# (b) a third transaction leaves its change to the folder
is( $q->(qq{
		BEGIN;
		@{[$complete->($child[2])]};
		SELECT (@{[$seen->($parent[2])]}) || ' ' ||
		       (SELECT completed FROM batchjob_child_counts($parent[2]));
		ROLLBACK}),
	'0/1 1',
	'a third transaction rolling up meanwhile: its difference waits, the exact read counts it');

# (c) unless it sets batchjob.defer_when_busy off
is( $q->(qq{
		SET batchjob.defer_when_busy = off;
		BEGIN;
		@{[$complete->($child[2])]};
		@{[$seen->($parent[2])]};
		ROLLBACK}),
	'1/0', '... with batchjob.defer_when_busy off it folds at once');

# (d) a slot given back is taken by the next transaction
$s[0]->query_safe('COMMIT');
is($q->($slots_held), '8', 'a commit gives its slot back');
is( $q->(qq{
		BEGIN;
		@{[$complete->($child[3])]};
		@{[$seen->($parent[3])]};
		COMMIT}),
	'1/0', 'the next transaction takes the free slot and folds at once');

# (e) a committed deferral, then everything folded
$s[2] = $node->background_psql($db, on_error_stop => 1);
$s[2]->query_safe(quiet_sql());
$s[2]->query_safe('BEGIN');
$s[2]->query_safe($complete->($child[4]));
is( $q->(qq{
		BEGIN;
		@{[$complete->($child[2])]};
		@{[$seen->($parent[2])]};
		COMMIT}),
	'0/1', 'with two slots held again, a committed change is left to the folder');
$_->query_safe('COMMIT') for @s[1, 2];
$_->quit for @s;
$q->('SELECT batchjob_fold()');
is($q->('SELECT count(*) FROM batch_job_deltas'), '0', 'after the fold nothing waits');
is( $q->(qq{SELECT string_agg(child_completed::text, ',' ORDER BY job_id)
	          FROM batch_jobs WHERE job_id IN (@{[join ',', @parent]})}),
	'1,1,1,1,1', 'every parent counts its completed child');
is($q->('SELECT count(*) FROM batchjob_verify()'), '0', 'batchjob_verify() is empty');

$node->stop;
done_testing();
