# test/t/BatchjobFolder.pm - what the folder's tests share: a node, sessions
# kept open in the background (one holding the right to fold into parents,
# one LISTENing for batchjob_parent_done), a deferred difference forced
# without timing, and bounded waits for the folder to fold it.
#
# How a difference is made to wait, deterministically: session A runs
# BEGIN; SELECT batchjob_fold(P); and so holds P's right to fold until it
# ends.  A child change of P committed meanwhile by another session finds
# the right taken and leaves its difference in batch_job_deltas; the
# transaction that left it starts a folder before it commits.  When A ends,
# only the folder can fold it (no further child change comes).
#
# Every wait is bounded: polls give up after a fixed number of seconds
# (never asserted as a timing), and PG_TEST_TIMEOUT_DEFAULT (60 s unless
# set) bounds every psql call.
package BatchjobFolder;

use strict;
use warnings;

# BatchjobCrash's BEGIN block finds PostgreSQL's test modules and binaries
# through PG_CONFIG; load it for that alone.
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash ();

use Exporter 'import';
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(folder_node new_db hold_rights release listener
  notifications_ok poll parent_settled_ok verify_empty deltas children_of
  quiet_sql folder_count parent_with_last_child complete_child);

# What every session of these tests sets: notices on stderr would make a
# background session's query look failed.
my $quiet = 'SET client_min_messages = warning';
sub quiet_sql { return $quiet; }

# A node of its own; @conf are extra postgresql.conf lines.
sub folder_node
{
	my ($name, @conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		join("\n", 'log_statement = none', 'log_min_messages = log', @conf)
		  . "\n");
	$node->start;
	return $node;
}

# A database with the extension.
sub new_db
{
	my ($node, $db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION batchjob');
	return $db;
}

# A background session that holds the right to fold into each of @parents
# (its transaction stays open until release()).
sub hold_rights
{
	my ($node, $db, @parents) = @_;
	my $s = $node->background_psql($db, on_error_stop => 1);
	$s->query_safe($quiet);
	$s->query_safe('BEGIN');
	$s->query_safe("SELECT batchjob_fold($_)") for @parents;
	return $s;
}

# Ends a session from hold_rights() (COMMIT), or any other background one.
sub release
{
	my ($s, $sql) = @_;
	$s->query_safe($sql // 'COMMIT');
	$s->quit;
	return;
}

# A background session LISTENing for batchjob_parent_done in $db.
sub listener
{
	my ($node, $db) = @_;
	my $s = $node->background_psql($db, on_error_stop => 1);
	$s->query_safe($quiet);
	$s->query_safe('LISTEN batchjob_parent_done');
	$s->{bj_seen} = '';
	return $s;
}

# The notifications the listener has received so far for $job, as
# "STATUS" strings.  psql prints them after the next command it runs.
sub _notes_for
{
	my ($l, $job) = @_;
	$l->{bj_seen} .= $l->query_safe('SELECT 1');
	my @s;
	while ($l->{bj_seen} =~
		/Asynchronous notification "batchjob_parent_done" with payload "\{"job_id": (\d+), "status": "(\w+)"\}"/g)
	{
		push @s, $2 if $1 eq $job;
	}
	return @s;
}

# batchjob_parent_done came for $job exactly once, with $status.  Waits
# (bounded) for the first one, then a moment more for a second.
sub notifications_ok
{
	my ($l, $job, $status, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @s;
	my $end = time + 10;
	while (time < $end)
	{
		@s = _notes_for($l, $job);
		last if @s;
		sleep 0.1;
	}
	sleep 0.5;
	@s = _notes_for($l, $job);
	return is(join(',', @s), $status,
		"$name: batchjob_parent_done sent once for job $job, $status");
}

# Polls $sql in $db until it returns 't', for at most $secs seconds.
sub poll
{
	my ($node, $db, $sql, $secs) = @_;
	my $end = time + ($secs // 30);
	while (1)
	{
		my ($rc, $out) = $node->psql($db, $sql);
		return 1 if $rc == 0 && $out eq 't';
		return 0 if time > $end;
		sleep 0.05;
	}
}

# The children's figures of $parent, as the stored parent row must have
# them once everything is folded.
sub children_of
{
	my ($parent) = @_;
	return qq{
		SELECT count(*) FILTER (WHERE status = 'PENDING') AS child_pending,
		       count(*) FILTER (WHERE status = 'PROCESSING') AS child_processing,
		       count(*) FILTER (WHERE status = 'COMPLETED') AS child_completed,
		       count(*) FILTER (WHERE status = 'FAILED') AS child_failed,
		       count(*) FILTER (WHERE status = 'CANCELLED') AS child_cancelled,
		       coalesce(sum(processed_records), 0) AS processed_records
		  FROM batch_jobs WHERE parent_job_id = $parent};
}

sub deltas
{
	my ($node, $db, $parent) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) FROM batch_job_deltas WHERE parent_job_id = $parent");
}

# Waits (bounded) until nothing waits for $parent and its stored counters
# are its children's; then checks that, and its status ($status, finished
# with completed_at when it is a finished status).
sub parent_settled_ok
{
	my ($node, $db, $parent, $status, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $kids = children_of($parent);
	my $stored = qq{
		SELECT child_pending, child_processing, child_completed, child_failed,
		       child_cancelled, processed_records
		  FROM batch_jobs WHERE job_id = $parent};
	my $exact = qq{
		SELECT NOT EXISTS (SELECT FROM batch_job_deltas WHERE parent_job_id = $parent)
		   AND NOT EXISTS (($kids) EXCEPT ALL ($stored))
		   AND (SELECT status = '$status' FROM batch_jobs WHERE job_id = $parent)};
	my $ok = poll($node, $db, $exact, 30);
	ok($ok, "$name: the folder folds what waited for job $parent (none waits, the stored counters are its children's, $status)")
	  or diag(scalar $node->psql($db,
			"SELECT 'waiting ' || count(*) FROM batch_job_deltas WHERE parent_job_id = $parent;
			 SELECT 'stored ' || s::text FROM ($stored) s;
			 SELECT 'children ' || k::text FROM ($kids) k;
			 SELECT 'status ' || status FROM batch_jobs WHERE job_id = $parent"));
	if ($status =~ /^(COMPLETED|FAILED|CANCELLED)$/)
	{
		is($node->safe_psql($db,
				"SELECT completed_at IS NOT NULL FROM batch_jobs WHERE job_id = $parent"),
			't', "$name: job $parent is finished (completed_at set)");
	}
	return $ok;
}

sub verify_empty
{
	my ($node, $db, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is($node->safe_psql($db,
			q{SELECT job_id || ': ' || problem FROM batchjob_verify() LIMIT 5}),
		'', "$name: batchjob_verify() is empty");
}

# How many folders run in the node right now (in $db, if given).
sub folder_count
{
	my ($node, $db) = @_;
	my $where = defined $db ? " AND datname = '$db'" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'batchjob folder'$where");
}

# A parent of $n children of 10 records in $db, created by $by, every child
# claimed (the database must have no other pending leaf) and all but the
# last completed.  Returns the parent and the last child.
sub parent_with_last_child
{
	my ($node, $db, $by, $n) = @_;
	my $q = sub { $node->safe_psql($db, "$quiet; " . shift) };
	my $p = $q->("SELECT job_id FROM batchjob_create_parent('{}', '$by')");
	$q->("SELECT count(*) FROM batchjob_split($p, 10 * $n, 10)");
	my @c = split /\n/,
	  $q->("SELECT job_id FROM batchjob_claim('$by', $n) ORDER BY job_id");
	die "claimed @c, not the $n children of $p" unless @c == $n;
	my $last = pop @c;
	$q->("SELECT batchjob_progress($_, 10, 10, 0, '$by'); SELECT batchjob_complete($_, '$by')")
	  for @c;
	$q->("SELECT batchjob_progress($last, 10, 10, 0, '$by')");
	return ($p, $last);
}

# Completes $child in a session of its own that ends right after.
sub complete_child
{
	my ($node, $db, $child) = @_;
	return $node->safe_psql($db, "$quiet; SELECT status FROM batchjob_complete($child)");
}

1;
