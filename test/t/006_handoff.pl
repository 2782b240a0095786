# test/t/006_handoff.pl - rollups leave their work to a busy folder, and
# take it back when it lets go (src/fold.c, "Hand-off under load").
#
# The busy state is forced, not hoped for under load: a session holds the
# folder's busy lock with batchjob_hold_folder_busy(true), as a busy folder
# does.  While it does, a change from another session leaves its
# difference in batch_job_deltas (seen by the changing transaction itself
# and by the functions, not in the stored parent row), unless that session
# sets batchjob.defer_when_busy off; a child under a job that is not a
# parent is still refused.  Once it lets go, a lone change reaches the
# stored row at once.  Then a burst: 200 completions committed one by one
# while another session holds the parent's right to fold, so that the
# folder meets them all at once (and may take the busy lock itself); once
# that session ends, the folder folds everything: nothing waits, the stored
# counters are the children's, batchjob_verify() is empty.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobFolder;
use Test::More;

my $node = folder_node('handoff');
my $db = new_db($node, 'bj_handoff');
my $q = sub { $node->safe_psql($db, shift) };

# A parent for the burst, a quiet parent (three children) whose changes
# are looked at, and a plain job.
my $loaded = $q->(q{SELECT job_id FROM batchjob_create_parent('{}', 'handoff')});
my $quiet = $q->(q{SELECT job_id FROM batchjob_create_parent('{}', 'handoff', -1)});
$q->("SELECT count(*) FROM batchjob_split($loaded, 20100, 100)");
$q->("SELECT count(*) FROM batchjob_split($quiet, 300, 100)");
my ($qc1, $qc2, $qc3) = split /\n/,
  $q->("SELECT job_id FROM batch_jobs WHERE parent_job_id = $quiet ORDER BY job_id");
my $plain = $q->(q{INSERT INTO batch_jobs (status) VALUES ('PENDING') RETURNING job_id});

my $busy_held = q{
	SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
	 WHERE d.datname = current_database() AND l.locktype = 'advisory'
	   AND l.classid = x'62617463'::int::oid AND l.objid = x'686a6f62'::int::oid
	   AND l.objsubid = 4 AND l.granted AND l.mode = 'ExclusiveLock'};

# The session that plays the busy folder.
my $h = $node->background_psql($db, on_error_stop => 1);
$h->query_safe(quiet_sql());
is($h->query_safe('SELECT batchjob_hold_folder_busy(true)'), 't',
	'a superuser session takes the folder busy lock');
is($q->($busy_held), '1', 'pg_locks shows the busy lock (objsubid 4) held');

# (a) Left to the folder: the difference waits, seen by the transaction
# and by batchjob_child_counts, not in the stored row.
my $counts_exact = qq{
	SELECT (c.pending, c.processing, c.completed, c.failed, c.cancelled)
	       = (k.child_pending, k.child_processing, k.child_completed,
	          k.child_failed, k.child_cancelled)
	  FROM batchjob_child_counts($quiet) c, (@{[children_of($quiet)]}) k};
is( $q->(qq{
		BEGIN;
		UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $qc1;
		SELECT (SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $quiet)
		       || ' ' || (SELECT child_cancelled FROM batch_jobs WHERE job_id = $quiet)
		       || ' ' || (SELECT cancelled FROM batchjob_child_counts($quiet))
		       || ' ' || ($counts_exact);
		ROLLBACK;}),
	'1 0 1 true',
	'busy: a change from another session waits in batch_job_deltas, the stored row is unchanged, batchjob_child_counts is exact');

# (b) Unless the session sets batchjob.defer_when_busy off.
is( $q->(qq{
		SET batchjob.defer_when_busy = off;
		BEGIN;
		UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $qc1;
		SELECT (SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $quiet)
		       || ' ' || (SELECT child_cancelled FROM batch_jobs WHERE job_id = $quiet)
		       || ' ' || ($counts_exact);
		ROLLBACK;}),
	'0 1 true',
	'busy, with batchjob.defer_when_busy off: the change goes into the stored parent row at once');

# (c) A child under a job that is not a parent is still refused.
my ($rc, $out, $err) = $node->psql($db, qq{
	\\set VERBOSITY verbose
	INSERT INTO batch_jobs (parent_job_id, batch_number, batch_offset, batch_size, total_records)
	VALUES ($plain, 1, 0, 100, 100)});
like($err, qr/ERROR:  22023: job $plain is not a parent job/,
	'busy: a child under a plain job is refused (22023)');
is($q->("SELECT count(*) FROM batch_jobs WHERE parent_job_id = $plain"), '0',
	'busy: no child was added under the plain job');
is($q->($busy_held), '1', 'the busy lock was held throughout');

# (d) Let go: a lone change reaches the stored row at once.  Nothing was
# committed yet, so no folder ran and none holds the busy lock.
is($h->query_safe('SELECT batchjob_hold_folder_busy(false)'), 'f',
	'the session lets go of the busy lock');
is($q->($busy_held), '0', 'nobody holds the busy lock');
is( $q->(qq{
		BEGIN;
		UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $qc1;
		SELECT (SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $quiet)
		       || ' ' || (SELECT child_cancelled FROM batch_jobs WHERE job_id = $quiet);
		COMMIT;
		SELECT (SELECT count(*) FROM batch_job_deltas)
		       || ' ' || (SELECT child_cancelled FROM batch_jobs WHERE job_id = $quiet);}),
	"0 1\n0 1",
	'not busy: a lone change is in the stored parent row at once, inside its transaction and after');

# (e) Commits left to the folder.  Busy again: two changes of the quiet
# parent (its last two children cancelled), committed, wait for the folder.  And a burst: the loaded parent's
# right is held while 200 of its children are claimed and completed, each
# completion a transaction of its own, so all 200 differences wait.
is($h->query_safe('SELECT batchjob_hold_folder_busy(true)'), 't',
	'the session takes the busy lock again');
my $a = hold_rights($node, $db, $loaded);
$q->(qq{
	SET client_min_messages = warning;
	UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $qc2;
	UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $qc3;
	SELECT count(*) FROM batchjob_claim('burst', 200);
	DO \$\$
	DECLARE j bigint;
	BEGIN
		FOR j IN SELECT job_id FROM batch_jobs
		          WHERE parent_job_id = $loaded AND status = 'PROCESSING'
		          ORDER BY job_id
		LOOP
			PERFORM batchjob_progress(j, 100, 100, 0, 'burst');
			PERFORM batchjob_complete(j, 'burst');
			COMMIT;
		END LOOP;
	END
	\$\$;});
is($q->("SELECT count(*) FROM batch_jobs WHERE parent_job_id = $loaded AND status = 'COMPLETED'"),
	'200', 'the burst completed 200 children of the loaded parent');
cmp_ok($q->("SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $loaded"),
	'>=', 200, 'while its right is held, each of their differences waits');

# Let go of both; the folder folds everything.
release($a);
is($h->query_safe('SELECT batchjob_hold_folder_busy(false)'), 'f',
	'the session lets go of the busy lock');
$h->quit;
ok(poll($node, $db, 'SELECT NOT EXISTS (SELECT FROM batch_job_deltas)', 30),
	'the folder folds every waiting difference by itself');
parent_settled_ok($node, $db, $loaded, 'PROCESSING', 'burst');
parent_settled_ok($node, $db, $quiet, 'CANCELLED', 'quiet parent');
is($q->("SELECT processed_records FROM batch_jobs WHERE job_id = $loaded"), '20000',
	'the loaded parent counts the 200 completions of 100 records');
verify_empty($node, $db, 'hand-off');

$node->stop;
done_testing();
