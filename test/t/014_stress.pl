# test/t/014_stress.pl - the multi-client stress test of batchjob.
#
# Eight pgbench clients claim, report on, complete and fail 5500 child
# jobs under four roots (two 'continue', one 'fail_fast', and one with
# three sub-parents, one of them 'fail_fast'), recording every claim and
# every finish in audit tables; they also reap the leases of five claims a
# "crashed" worker abandoned.  A single worker then drains whatever is left
# (jobs still backing off after a failure), the folder folds every
# difference left waiting, and stress/checks.sql asserts that no job was
# claimed twice or held by two workers at once, that every job ended as the
# worker rules say, and that every parent's stored progress equals both a
# direct count over its children and batchjob_refresh_parent()'s
# recomputation.  See stress/setup.sql for the jobs and the worker rules.
#
# The load decides only the order of events, never an assertion: every
# check is about the end state.  Every wait is bounded: pgbench, the drain
# and the wait for the folder all stop within BJ_STRESS_BUDGET seconds
# (default 60) of the start; a run takes about 20 seconds on two cores.
# BJ_STRESS_SHARE (default 115) sets the pgbench transactions as a
# percentage of the jobs; below 100 leaves more work to the drain.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash ();    # finds PostgreSQL's test modules through PG_CONFIG
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = "$FindBin::RealBin/stress";
my $clients = 8;
my $threads = 2;
my $share = $ENV{BJ_STRESS_SHARE} || 115;
my $budget = $ENV{BJ_STRESS_BUDGET} || 60;

my $node = PostgreSQL::Test::Cluster->new('stress');
$node->init;
$node->append_conf('postgresql.conf', "log_statement = none\nmax_connections = 40\n");
$node->start;
my $db = 'bj_stress';
my $q = sub { return $node->safe_psql($db, shift); };

my $start = time;
my $pgbench_end = $start + int($budget * 2 / 3);
my $drain_end = $start + $budget - int($budget / 6);
my $fold_end = $start + $budget;

$node->safe_psql('postgres', "CREATE DATABASE $db");
$q->('CREATE EXTENSION batchjob');
$q->(slurp_file("$dir/setup.sql"));
my $children = $q->('SELECT count(*) FROM batch_jobs WHERE NOT is_parent');
note "$children child jobs under "
  . $q->('SELECT count(*) FROM batch_jobs WHERE is_parent')
  . ' parents';

my $base = $node->basedir;
for my $w ([ 'worker', 'w' ], [ 'drain', 'drain' ])
{
	(my $script = slurp_file("$dir/worker.sql")) =~ s/\@WORKER\@/$w->[1]/g;
	append_to_file("$base/$w->[0].sql", $script);
}

# Runs pgbench for at most $secs seconds; returns its exit status (-1 when
# it was stopped) and its report.
sub pgbench
{
	my ($secs, @args) = @_;
	my ($out, $err) = ('', '');
	my @cmd = ('pgbench', '-n', '-h', $node->host, '-p', $node->port, @args, $db);
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($secs > 1 ? $secs : 1));
	my $rc = eval { $h->finish; $h->result(0) };
	if (!defined $rc)
	{
		note "pgbench stopped: $@";
		eval { $h->kill_kill };
		$rc = -1;
	}
	return ($rc, "$out$err");
}

# About one claim per job and client share, plus room for retries and for
# the idle rounds near the end; what is left over, the drain finishes.
my $per_client = int(($children * $share / 100 + $clients - 1) / $clients);
note "pgbench: $clients clients, $threads threads, $per_client transactions each, stopped after "
  . int($pgbench_end - $start) . 's';
my ($pgbench_rc, $report) = pgbench($pgbench_end - time,
	'-c', $clients, '-j', $threads, '-t', $per_client,
	'--failures-detailed', '--verbose-errors', '-f', "$base/worker.sql");
note $_
  for grep { /^(tps|number of (transactions actually processed|failed transactions|serialization failures|deadlock failures)|latency average)/ }
  split /\n/, $report;
my ($pgbench_failed) = $report =~ /^number of failed transactions: (\d+)/m;

# Drain: reap expired leases and run one worker until no job is PENDING or
# PROCESSING.
my ($left, $drained) = (undef, 0);
while (1)
{
	$left = $q->(
		"SELECT count(*) FROM batch_jobs WHERE NOT is_parent AND status IN ('PENDING', 'PROCESSING')");
	if ($left == 0)
	{
		$drained = 1;
		last;
	}
	last if time >= $drain_end;
	$q->('INSERT INTO stress_reaps (reaped) SELECT batchjob_reap()');
	pgbench(10, '-c', 1, '-t', 100, '-f', "$base/drain.sql");
	sleep 0.2;
}

# The rollup defers a difference when another transaction holds the parent;
# the folder background worker must fold every one of them by itself.
my $waiting0 = $q->('SELECT count(*) FROM batch_job_deltas');
my ($waiting, $folded) = ($waiting0, 0);
while (1)
{
	$waiting = $q->('SELECT count(*) FROM batch_job_deltas');
	if ($waiting == 0)
	{
		$folded = 1;
		last;
	}
	last if time >= $fold_end;
	sleep 0.2;
}
my $deferred = $q->(
	"SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'batch_job_deltas'");
note "rollup differences deferred: about $deferred; unfolded when the drain ended: $waiting0, at the end of the wait: $waiting";
$q->('SELECT batchjob_fold()') unless $folded;
note "drain: $left jobs left, "
  . $q->('SELECT coalesce(sum(reaped), 0) FROM stress_reaps')
  . ' reaped in all, '
  . $q->("SELECT count(*) FROM stress_claims WHERE worker LIKE 'drain%'")
  . ' claimed by the drain worker';

ok($pgbench_rc == 0 && defined $pgbench_failed && $pgbench_failed == 0,
	'pgbench: every client ran to the end without an error')
  or diag "exit status $pgbench_rc, failed transactions "
  . ($pgbench_failed // '?') . '; '
  . join(' ', grep { defined } (grep { /error|abort/i } split /\n/, $report)[ 0 .. 2 ]);
ok($drained, 'the drain left no job PENDING or PROCESSING in time')
  or diag "$left jobs left";
ok($folded, 'the folder folded every deferred rollup difference by itself in time')
  or diag "$waiting differences still in batch_job_deltas";

# stress/checks.sql: one line per check, "offending rows<TAB>what<TAB>first".
my ($rc, $out, $err) = $node->psql($db, slurp_file("$dir/checks.sql"));
for my $line (split /\n/, $out)
{
	my ($bad, $what, $example) = split /\t/, $line, 3;
	next unless defined $what;
	is($bad, 0, $what) or diag "$bad offending; first: " . ($example // '');
}
is($rc, 0, 'stress/checks.sql ran to its end') or diag $err;

note 'outcomes: '
  . $q->(q{SELECT string_agg(outcome || ' ' || n, ', ' ORDER BY outcome)
           FROM (SELECT regexp_replace(outcome, ':.*', '') AS outcome, count(*) AS n
                   FROM stress_finishes GROUP BY 1) s});
note 'parents: '
  . $q->(q{SELECT string_agg(sp.name || ' ' || p.status || ' (' || p.child_completed
                  || ' done, ' || p.child_failed || ' failed, ' || p.child_cancelled
                  || ' cancelled)', '; ' ORDER BY sp.name)
           FROM stress_parents sp JOIN batch_jobs p USING (job_id)});
note sprintf('took %.0fs', time - $start);

$node->stop('fast');
done_testing();
