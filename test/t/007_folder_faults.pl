# test/t/007_folder_faults.pl - the folder folds deferred differences
# whatever other sessions, the database's defaults or a bad parent do
# (issue 9, "a folder nothing can stop").
#
# Each scenario sets up its condition, forces a deferred difference (a
# session holds the parent's right to fold while another completes the
# parent's last child; see BatchjobFolder.pm), lets the holder go, and
# waits (bounded) until the stored parent is exact and finished; a session
# LISTENing for batchjob_parent_done must have heard of it exactly once.
#
#   a. a role with no batchjob grant holds every advisory lock it might
#      guess batchjob uses, in an idle session
#   b. a poisoned parent: two differences that overflow bigint when folded
#      together; the folder logs it once, goes on with another tenant's
#      parent, and batchjob_verify() reports the stale differences
#   c. database defaults that would stop a folder inheriting them
#      (read-only, repeatable read, 1 ms timeouts, replica role)
#   d. an admin session holds the parent's row: other parents fold
#      meanwhile, the pinned one once the admin commits
#   g. two-phase commit: the deferring transaction is prepared and then
#      committed from another session, once the folder's quiet spell is
#      over
#   h. the deferring session ends right after its commit
#
# (e, a burst of commits, is 008_folder_burst.pl; f, no worker slot free,
# is 009_folder_no_slot.pl.)
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobFolder;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = folder_node('faults', 'max_prepared_transactions = 5');
my $db = new_db($node, 'bj_faults');
my $q = sub { $node->safe_psql($db, quiet_sql() . '; ' . shift) };
my $listen = listener($node, $db);

# --- a. an intruder holds every advisory lock it might guess -------------
{
	my ($p, $last) = parent_with_last_child($node, $db, 'a', 3);
	$q->('CREATE ROLE intruder LOGIN');
	is($q->("SELECT has_table_privilege('intruder', 'batch_jobs', 'SELECT,UPDATE')
	            OR has_table_privilege('intruder', 'batch_job_deltas', 'INSERT')"),
		'f', 'a: the intruder has no batchjob grant');
	my $hi = "(${p}::bigint >> 32)::int";
	my $lo = "(${p}::bigint & 4294967295)::bit(32)::int";
	my @keys = (
		'1650553955, 1751805794',    # "batc", "hjob"
		'1751805794, 1650553955',
		"$hi, $lo",                  # the parent's id split in two
		"$lo, $hi",
		"${p}::int, ${p}::int",
		"1650553955, ${p}::int",
		"${p}::int, 1751805794",
		"$p",                        # objsubid 1 while at it
		"x'62617463686a6f62'::bigint",
		"x'686a6f6262617463'::bigint");
	my $i = do
	{
		local $ENV{PGUSER} = 'intruder';
		$node->background_psql($db, on_error_stop => 1);
	};
	is($i->query_safe('SELECT current_user'), 'intruder', 'a: the intruder is logged in');
	$i->query_safe(quiet_sql());
	$i->query_safe("SELECT pg_advisory_lock($_)") for @keys;
	is($i->query_safe(q{SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()
	                      AND locktype = 'advisory' AND granted}),
		scalar(@keys), "a: the intruder holds its " . scalar(@keys) . " guesses, idle");

	my $a = hold_rights($node, $db, $p);
	is(complete_child($node, $db, $last), 'COMPLETED', 'a: the last child is completed');
	is(deltas($node, $db, $p), '1', 'a: its difference waits (the right is held)');
	release($a);
	parent_settled_ok($node, $db, $p, 'COMPLETED', 'a');
	notifications_ok($listen, $p, 'COMPLETED', 'a');
	verify_empty($node, $db, 'a');
	$i->quit;
}

# --- d. an admin holds a parent's row ------------------------------------
{
	my ($p1, $last1) = parent_with_last_child($node, $db, 'd1', 2);
	my ($p2, $last2) = parent_with_last_child($node, $db, 'd2', 2);
	my $a = hold_rights($node, $db, $p1, $p2);
	complete_child($node, $db, $_) for ($last1, $last2);
	is(deltas($node, $db, $p1) . ' ' . deltas($node, $db, $p2), '1 1',
		'd: both differences wait');
	my $admin = $node->background_psql($db, on_error_stop => 1);
	$admin->query_safe(quiet_sql());
	$admin->query_safe('BEGIN');
	is($admin->query_safe("SELECT job_id FROM batch_jobs WHERE job_id = $p1 FOR UPDATE"),
		$p1, "d: an admin session holds job ${p1}'s row");
	release($a);
	parent_settled_ok($node, $db, $p2, 'COMPLETED', 'd, the other parent');
	notifications_ok($listen, $p2, 'COMPLETED', 'd, the other parent');
	# the admin still holds the row: no fold of p1 can have committed
	is($q->("SELECT status || ' ' || child_completed || ' '
	                || (SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $p1)
	           FROM batch_jobs WHERE job_id = $p1"),
		'PROCESSING 1 1', "d: while the row is held, job ${p1}'s difference waits");
	release($admin);
	parent_settled_ok($node, $db, $p1, 'COMPLETED', 'd, the pinned parent');
	notifications_ok($listen, $p1, 'COMPLETED', 'd, the pinned parent');
	verify_empty($node, $db, 'd');
}

# --- g. two-phase commit --------------------------------------------------
{
	my ($p, $last) = parent_with_last_child($node, $db, 'g', 2);
	my $a = hold_rights($node, $db, $p);
	my $b = $node->background_psql($db, on_error_stop => 1);
	$b->query_safe(quiet_sql());
	$b->query_safe('BEGIN');
	$b->query_safe("SELECT batchjob_complete($last)");
	$b->query_safe("PREPARE TRANSACTION 'bj_g'");
	$b->quit;
	release($a);
	is($q->("SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'bj_g'"), '1',
		'g: the deferring transaction is prepared, its session gone');
	# Nothing it can see waits, but the prepared transaction holds its lock
	# on batch_job_deltas: the folder stays past its quiet spell (2 s)
	# rather than leave and wait for it (010_folder_open_transaction.pl).
	sleep 2.5;
	is($q->(q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
	             AND classid = x'62617463'::int::oid AND objsubid = 5 AND granted})
		  . ' ' . folder_count($node, $db),
		'1 1', 'g: one folder stays, holding its lock, while the prepared transaction is open');
	$q->("COMMIT PREPARED 'bj_g'");
	parent_settled_ok($node, $db, $p, 'COMPLETED', 'g');
	notifications_ok($listen, $p, 'COMPLETED', 'g');
	verify_empty($node, $db, 'g');
}

# --- h. the deferring session ends right after its commit ----------------
{
	my ($p, $last) = parent_with_last_child($node, $db, 'h', 2);
	my $a = hold_rights($node, $db, $p);
	is(complete_child($node, $db, $last), 'COMPLETED',
		'h: a session completes the last child and exits');
	is(deltas($node, $db, $p), '1', 'h: its difference waits');
	release($a);
	parent_settled_ok($node, $db, $p, 'COMPLETED', 'h');
	notifications_ok($listen, $p, 'COMPLETED', 'h');
	verify_empty($node, $db, 'h');
}
$listen->quit;

# --- b. a poisoned parent -------------------------------------------------
{
	my $pdb = new_db($node, 'bj_poison');
	my $pq = sub { $node->safe_psql($pdb, quiet_sql() . '; ' . shift) };
	my $l = listener($node, $pdb);
	my $r = $pq->(q{SELECT job_id FROM batchjob_create_parent('{}', 'tenant_r')});
	my ($qp, $qlast) = parent_with_last_child($node, $pdb, 'tenant_q', 2);
	my $a = hold_rights($node, $pdb, $r, $qp);
	# total_records above 2^48 is refused where a job is made (test/bounds.sql),
	# so the poison is forced here: the two sub-parents' differences, made
	# with small totals, are raised to 2^62 records each where they wait
	my @subs = map {
		$pq->(qq{SELECT job_id FROM batchjob_create_parent('{}', 'tenant_r',
		             total_records => 1000, parent_job_id => $r)})
	} 1 .. 2;
	$pq->("UPDATE batch_job_deltas SET total_records = 4611686018427387904 WHERE parent_job_id = $r");
	complete_child($node, $pdb, $qlast);
	is(deltas($node, $pdb, $r) . ' ' . deltas($node, $pdb, $qp), '2 1',
		'b: two 2^62-record sub-parents of R wait, and the last completion of Q');
	my $log_at = -s $node->logfile;
	release($a);
	parent_settled_ok($node, $pdb, $qp, 'COMPLETED', 'b, another tenant');
	notifications_ok($l, $qp, 'COMPLETED', 'b, another tenant');

	# R cannot be folded (2^62 + 2^62 overflows bigint): logged once, its
	# differences stay.
	my $msg = qr/could not fold into parent job $r: progress of parent job $r is out of range for bigint/;
	my $logged = sub {
		my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile, $log_at);
		my $n = () = $log =~ /$msg/g;
		return $n;
	};
	my $end = time + 30;
	sleep 0.1 while $logged->() == 0 && time < $end;
	# the folder leaves after a quiet spell; it must not log again meanwhile
	ok(poll($node, 'postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'batchjob folder' AND datname = '$pdb'",
			30),
		'b: the folder leaves after its quiet spell');
	is($logged->(), 1, "b: the server log says once that parent job $r could not be folded");
	is($pq->("SELECT (SELECT count(*) FROM batch_job_deltas d WHERE d.parent_job_id = $r)
	                || ' ' || child_pending || ' ' || coalesce(total_records, 0)
	            FROM batch_jobs WHERE job_id = $r"),
		'2 0 0', "b: R's two differences wait, its stored row unchanged");
	$l->{bj_seen} .= $l->query_safe('SELECT 1');
	unlike($l->{bj_seen}, qr/"job_id": $r,/, 'b: no batchjob_parent_done for R');

	# batchjob_verify() reports R once its differences are older than a
	# fold may take.
	$pq->("UPDATE batch_job_deltas SET deferred_at = now() - interval '2 minutes' WHERE parent_job_id = $r");
	# (the forced figures differ from R's children too, which it also says)
	my $report = $pq->('SELECT job_id || \': \' || problem FROM batchjob_verify()');
	like($report,
		qr/^$r: 2 differences waiting since .*, longer than the 60 seconds a fold may take$/m,
		'b: batchjob_verify() reports that R\'s differences wait too long');
	is(join(',', sort { $::a <=> $::b } keys %{ { map { /^(\d+):/ ? ($1 => 1) : () } split /\n/, $report } }),
		$r, 'b: batchjob_verify() reports R, and only R');
	$l->quit;
}

# --- c. database defaults --------------------------------------------------
{
	my $cdb = new_db($node, 'bj_defaults');
	my ($p, $last) = parent_with_last_child($node, $cdb, 'c', 2);
	$node->safe_psql('postgres', qq{
		ALTER DATABASE $cdb SET default_transaction_read_only = on;
		ALTER DATABASE $cdb SET lock_timeout = '1ms';
		ALTER DATABASE $cdb SET default_transaction_isolation = 'repeatable read';
		ALTER DATABASE $cdb SET statement_timeout = '1ms';
		ALTER DATABASE $cdb SET idle_in_transaction_session_timeout = '1ms';
		ALTER DATABASE $cdb SET session_replication_role = 'replica';});
	# (read from the catalog: a session of the database itself could be
	# cancelled by its 1 ms statement_timeout)
	is($node->safe_psql('postgres', qq{
			SELECT array_to_string(s.setconfig, ' ')
			  FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
			 WHERE d.datname = '$cdb' AND s.setrole = 0}),
		'default_transaction_read_only=on lock_timeout=1ms default_transaction_isolation=repeatable read statement_timeout=1ms idle_in_transaction_session_timeout=1ms session_replication_role=replica',
		'c: the database has the hostile defaults');

	# The test's own sessions set them back; the folder must do so itself.
	local $ENV{PGOPTIONS} = join(' ',
		'-c default_transaction_read_only=off', '-c lock_timeout=0',
		'-c default_transaction_isolation=read\ committed', '-c statement_timeout=0',
		'-c idle_in_transaction_session_timeout=0', '-c session_replication_role=origin');
	is(folder_count($node, $cdb), '0',
		'c: no folder of the database started before the defaults were set');
	my $l = listener($node, $cdb);
	my $a = hold_rights($node, $cdb, $p);
	is(complete_child($node, $cdb, $last), 'COMPLETED', 'c: the last child is completed');
	is(deltas($node, $cdb, $p), '1', 'c: its difference waits');
	release($a);
	parent_settled_ok($node, $cdb, $p, 'COMPLETED', 'c');
	notifications_ok($l, $p, 'COMPLETED', 'c');
	verify_empty($node, $cdb, 'c');
	$l->quit;
}

$node->stop;
done_testing();
