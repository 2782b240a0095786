# test/t/BatchjobCrash.pm - what the crash tests of batchjob share: a node
# with the workload of crash_setup.sql, workers (pgbench) claiming and
# finishing jobs under load, a "victim" session caught in the middle of a
# completion, and the checks that run after the crash, after the reap, and
# once the workload has run to its end.
#
# A test file calls run_scenario() with a name and a crash: a sub that
# kills something (a backend, the server) while the workers run.  See
# test/t/README for what each check proves.
#
# Every wait is bounded: pgbench runs under a time limit and an IPC::Run
# timer, polls give up after a fixed number of seconds, and
# PG_TEST_TIMEOUT_DEFAULT (60 s unless set) bounds every psql call.
package BatchjobCrash;

use strict;
use warnings;

# Before PostgreSQL::Test::Utils is loaded: where PostgreSQL's test modules,
# binaries and pg_regress (which Cluster->init needs) live, and how long a
# psql call may take.
BEGIN
{
	my $pg_config = $ENV{PG_CONFIG} || 'pg_config';
	chomp(my $bindir = `$pg_config --bindir`);
	chomp(my $pgxs   = `$pg_config --pgxs`);
	die "$pg_config failed" unless $bindir && $pgxs;
	(my $pgxsdir = $pgxs) =~ s{/src/makefiles/pgxs\.mk$}{};
	$ENV{PATH} = "$bindir:$ENV{PATH}";
	$ENV{PG_REGRESS} ||= "$pgxsdir/src/test/regress/pg_regress";
	$ENV{PG_TEST_TIMEOUT_DEFAULT} ||= 60;
	# Each test sets up its servers itself: session settings meant for the
	# suites make installcheck runs first (Makefile) must not reach them.
	delete $ENV{PGOPTIONS};
	unshift @INC, "$pgxsdir/src/test/perl";
}

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(run_scenario);

my $here = dirname(File::Spec->rel2abs(__FILE__));
my $db = 'postgres';
my $clients = 4;
my %runs;    # pgbench runs so far, by worker prefix

sub slurp { return PostgreSQL::Test::Utils::slurp_file(shift); }

sub q1
{
	my ($node, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# A check: $sql returns the offending rows (at most 5 are shown), none
# when all is well.
sub none_ok
{
	my ($node, $sql, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $bad = q1($node, "SELECT * FROM ($sql) AS offending LIMIT 5");
	return is($bad, '', $name);
}

# Polls $sql until it returns 't', for at most $secs seconds.
sub wait_until
{
	my ($node, $sql, $secs) = @_;
	my $end = time + $secs;
	while (time < $end)
	{
		my ($rc, $out) = $node->psql($db, $sql);
		return 1 if $rc == 0 && $out eq 't';
		sleep 0.1;
	}
	return 0;
}

sub start_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	# Cluster.pm turns restart_after_crash off and logs every statement;
	# the SIGKILL test needs the restart, and the log would be huge.
	$node->append_conf('postgresql.conf', <<'EOC');
restart_after_crash = on
log_statement = none
max_connections = 40
EOC
	$node->start;
	q1($node, 'CREATE EXTENSION batchjob');
	q1($node, slurp("$here/crash_setup.sql"));
	return $node;
}

# Starts pgbench in the background: $clients workers named <prefix>-<pid>,
# each batch taking $work_ms; @args says how long (-T s or -t n).
sub start_workers
{
	my ($node, $prefix, $work_ms, $limit, @args) = @_;
	my $dir = $node->basedir;
	my $tag = "$prefix-" . ++$runs{$prefix};
	my $script = slurp("$here/crash_worker.sql");
	$script =~ s/\@PREFIX\@/$prefix/g;
	PostgreSQL::Test::Utils::append_to_file("$dir/$tag.sql", $script);
	my @cmd = (
		'pgbench', '-n', '-h', $node->host, '-p', $node->port,
		'-c', $clients, '-j', 2, '-D', "work_ms=$work_ms",
		'--failures-detailed', '-f', "$dir/$tag.sql", @args, $db);
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', "$dir/$tag.out",
		'2>', "$dir/$tag.err", IPC::Run::timeout($limit));
	return { h => $h, out => "$dir/$tag.out", err => "$dir/$tag.err", tag => $tag };
}

# Waits for pgbench to end (its IPC::Run timer bounds the wait; on expiry
# it is killed).  Returns its exit status and its report.
sub finish_workers
{
	my ($w) = @_;
	my $ok = eval { $w->{h}->finish; 1 };
	if (!$ok)
	{
		note "pgbench $w->{tag}: $@";
		$w->{h}->kill_kill;
		return (-1, '');
	}
	my $rc = $w->{h}->result(0);
	my $report = (-e $w->{out} ? slurp($w->{out}) : '') . (-e $w->{err} ? slurp($w->{err}) : '');
	return ($rc, $report);
}

# A session that claims a job (under a 6-second lease, so that the test can
# show that a reap right after the crash leaves it alone), then, in a
# transaction it never commits, reports progress, completes it, records the
# completion in the audit, and sleeps.  Returns once it sleeps: its backend's pid and its job.  A
# claim can race with a fail_fast cancellation of the job; then it tries
# again.
sub start_victim
{
	my ($node) = @_;
	my $sql = <<'EOS';
WITH c AS (SELECT job_id, attempts FROM batchjob_claim('victim', 1, '6 seconds')),
     a AS (INSERT INTO crash_claims (job_id, attempt, worker)
           SELECT job_id, attempts, 'victim' FROM c RETURNING job_id, attempt)
SELECT job_id AS v_job, attempt AS v_att FROM a \gset
BEGIN;
SELECT FROM batchjob_progress(:v_job,
    (SELECT total_records FROM batch_jobs WHERE job_id = :v_job),
    (SELECT total_records FROM batch_jobs WHERE job_id = :v_job), 0, 'victim');
SELECT FROM batchjob_complete(:v_job, 'victim');
INSERT INTO crash_done (job_id, attempt, worker, outcome)
VALUES (:v_job, :v_att, 'victim', 'completed');
SELECT 'victim ready: pid ' || pg_backend_pid() || ' job ' || :v_job;
SELECT pg_sleep(60);
COMMIT;
EOS
	for my $try (1 .. 3)
	{
		my ($out, $err) = ('', '');
		my $timer = IPC::Run::timer(20);
		my $h = IPC::Run::start(
			[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-f', '-' ],
			'<', \$sql, '>', \$out, '2>', \$err, IPC::Run::timeout(90));
		$timer->start;
		while ($out !~ /victim ready: pid (\d+) job (\d+)/ && !$timer->is_expired
			&& $h->pumpable)
		{
			$h->pump_nb;
			sleep 0.02;
		}
		if ($out =~ /victim ready: pid (\d+) job (\d+)/)
		{
			return { h => $h, pid => $1, job => $2 };
		}
		note "victim try $try did not get ready: $err";
		eval { $h->kill_kill; };
	}
	return undef;
}

sub end_victim
{
	my ($v) = @_;
	return unless $v;
	eval { $v->{h}->kill_kill; };
	return;
}

# The checks that hold at every quiet moment after a crash (no worker
# running): what the audit says was committed is exactly what the jobs say.
sub audit_checks
{
	my ($node, $when) = @_;
	none_ok($node, q{
		SELECT j.job_id, j.status, d.n FROM batch_jobs j
		LEFT JOIN (SELECT job_id, count(*) AS n FROM crash_done
		            WHERE outcome = 'completed' GROUP BY job_id) d USING (job_id)
		WHERE NOT j.is_parent AND (j.status = 'COMPLETED') IS DISTINCT FROM (coalesce(d.n, 0) = 1)
	}, "$when: no committed completion is lost, and none that was not committed is visible (COMPLETED = one audited completion)");
	none_ok($node, q{
		SELECT j.job_id, j.status, d.n FROM batch_jobs j
		LEFT JOIN (SELECT job_id, count(*) AS n FROM crash_done
		            WHERE outcome = 'failed' GROUP BY job_id) d USING (job_id)
		WHERE NOT j.is_parent AND (j.status = 'FAILED') IS DISTINCT FROM (coalesce(d.n, 0) = 1)
	}, "$when: no committed failure is lost or invented (FAILED = one audited failure)");
	none_ok($node, q{
		SELECT j.job_id, j.attempts, c.n, c.hi FROM batch_jobs j
		LEFT JOIN (SELECT job_id, count(*) AS n, max(attempt) AS hi
		             FROM crash_claims GROUP BY job_id) c USING (job_id)
		WHERE NOT j.is_parent
		  AND (j.attempts, j.attempts) IS DISTINCT FROM (coalesce(c.n, 0), coalesce(c.hi, 0))
	}, "$when: every committed claim is counted in attempts, and no other");
	none_ok($node, q{
		SELECT j.job_id, j.status, p.name FROM batch_jobs j
		JOIN crash_parents p ON p.job_id = j.parent_job_id
		WHERE j.status = 'CANCELLED'
		  AND (p.policy <> 'fail_fast'
		       OR EXISTS (SELECT FROM crash_done d WHERE d.job_id = j.job_id
		                   AND d.outcome IN ('completed', 'failed')))
	}, "$when: only fail_fast cancels, and never a job that was finished");
	return;
}

sub verify_empty
{
	my ($node, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is(q1($node, 'SELECT job_id || \': \' || problem FROM batchjob_verify() LIMIT 5'),
		'', $name);
}

# Runs one scenario; $crash->($node, $victim, $load) kills something and
# returns the names of the workers it killed, as an SQL condition on
# locked_by.
sub run_scenario
{
	my (%p) = @_;
	my $name = $p{name};
	my $t0 = time;
	my $phase = sub { note sprintf("%s: %s at %.1fs", $name, shift, time - $t0); };

	my $node = start_node($name);
	my $leaves = q1($node, 'SELECT count(*) FROM batch_jobs WHERE NOT is_parent');
	$phase->("$leaves leaves set up");

	# Workers under load, each batch 5 ms of "work".
	my $load = start_workers($node, 'load', 5, $p{load_seconds} + 60,
		'-T', $p{load_seconds});
	ok(wait_until($node,
			"SELECT count(*) >= 300 FROM crash_done WHERE outcome = 'completed'", 30),
		"$name: the workers are completing jobs (300 done)");
	verify_empty($node, "$name: batchjob_verify() is empty under load, before the crash");

	my $victim = start_victim($node);
	ok($victim, "$name: a victim session is in the middle of completing a job it claimed")
	  or BAIL_OUT('no victim session');
	is(q1($node, "SELECT status || ' ' || locked_by FROM batch_jobs WHERE job_id = $victim->{job}"),
		'PROCESSING victim', "$name: other sessions still see the victim's job PROCESSING");
	$phase->("victim pid $victim->{pid} holds job $victim->{job}");

	my $dead = $p{crash}->($node, $victim, $load);
	$phase->('crashed');

	# A lease outlives its worker: a reap now, while the victim's lease
	# still runs, must leave the victim's job alone.
	my ($lease_left, $early, $vstate) = split /\n/, q1($node, qq{
		SELECT locked_until - clock_timestamp() > interval '1 second'
		  FROM batch_jobs WHERE job_id = $victim->{job};
		SELECT batchjob_reap();
		SELECT status || ' ' || locked_by FROM batch_jobs WHERE job_id = $victim->{job}});
	SKIP:
	{
		skip "$name: the victim's lease ran out before the early reap", 1
		  unless $lease_left eq 't';
		is($vstate, 'PROCESSING victim',
			"$name: batchjob_reap() leaves a dead worker's job alone while its lease runs");
	}
	$phase->("early reap took $early jobs whose 2-second leases had run out");

	my ($rc, $report) = finish_workers($load);
	end_victim($victim);
	my ($done) = $report =~ /number of transactions actually processed: (\d+)/;
	$phase->(sprintf("load workers ended (exit %s, %s transactions)", $rc, $done // '?'));
	my $waiting = q1($node, 'SELECT count(*) FROM batch_job_deltas');
	$phase->("$waiting rollup differences waiting after the crash");

	# Right after the crash, before anything is folded or reaped.
	verify_empty($node, "$name: batchjob_verify() is empty after the crash (waiting differences included, nothing folded)");
	audit_checks($node, "$name, after the crash");
	is(q1($node, "SELECT status || ' ' || locked_by || ' ' || (locked_until IS NOT NULL) FROM batch_jobs WHERE job_id = $victim->{job}"),
		'PROCESSING victim true',
		"$name: the victim's uncommitted completion is not visible: its job is PROCESSING under the victim's lease");
	is(q1($node, "SELECT count(*) FROM crash_done WHERE worker = 'victim'"),
		'0', "$name: the victim's uncommitted audit row is not visible");
	q1($node, q{
		CREATE TABLE crash_orphans AS
		SELECT job_id, locked_by, locked_until, attempts FROM batch_jobs
		WHERE NOT is_parent AND status = 'PROCESSING'});
	my $orphans = q1($node, 'SELECT count(*) FROM crash_orphans');
	none_ok($node, "SELECT job_id, locked_by, locked_until FROM crash_orphans WHERE locked_until IS NULL OR NOT ($dead)",
		"$name: every job left PROCESSING ($orphans) belongs to a dead worker and has a lease");

	# The dead workers' jobs come back once their leases expire.
	ok(wait_until($node,
			'SELECT max(locked_until) < clock_timestamp() FROM crash_orphans', 15),
		"$name: the dead workers' leases expire");
	is(q1($node, 'SELECT batchjob_reap()'), $orphans,
		"$name: batchjob_reap() takes back exactly the $orphans jobs of dead workers");
	none_ok($node, q{
		SELECT o.job_id, j.status, j.locked_by, j.attempts FROM crash_orphans o
		JOIN batch_jobs j USING (job_id)
		WHERE (j.status, j.attempts) IS DISTINCT FROM ('PENDING', o.attempts)
		   OR j.locked_by IS NOT NULL OR j.locked_until IS NOT NULL
	}, "$name: each reaped job is PENDING again, without a lease, its attempt counted");
	verify_empty($node, "$name: batchjob_verify() is empty after the reap");
	$phase->("reaped $orphans");

	# Run the workload to its end.
	my $left;
	my $drain_ok = 1;
	my $drain_end = time + 60;
	while (1)
	{
		$left = q1($node, "SELECT count(*) FROM batch_jobs WHERE NOT is_parent AND status IN ('PENDING', 'PROCESSING')");
		last if $left == 0 || time > $drain_end;
		q1($node, 'SELECT batchjob_reap()');
		my $w = start_workers($node, 'drain', 0, 40,
			'-t', int($left / $clients) + 20);
		my ($drc, $drep) = finish_workers($w);
		if ($drc != 0 || $drep !~ /number of failed transactions: 0\b/)
		{
			$drain_ok = 0;
			diag "drain pgbench exit $drc: $drep";
		}
	}
	is($left, 0, "$name: the workload runs to its end after the crash (no leaf PENDING or PROCESSING)");
	ok($drain_ok, "$name: every worker transaction after the crash succeeded");
	$phase->('drained');

	verify_empty($node, "$name: batchjob_verify() is empty at the end, before any explicit fold");
	audit_checks($node, "$name, at the end");
	none_ok($node, q{
		SELECT j.job_id, j.status, c.n FROM batch_jobs j
		LEFT JOIN (SELECT job_id, count(*) AS n FROM crash_done
		            WHERE outcome IN ('completed', 'failed') GROUP BY job_id) c USING (job_id)
		WHERE NOT j.is_parent AND j.status <> 'CANCELLED' AND c.n IS NULL
	}, "$name: every leaf not cancelled was finished by a worker");

	my $unfolded = q1($node, 'SELECT count(*) FROM batch_job_deltas');
	q1($node, 'SELECT batchjob_fold()');
	note "$name: $unfolded rollup differences were still waiting at the end; batchjob_fold() folded them";
	none_ok($node, q{
		WITH kids AS (
			SELECT parent_job_id AS job_id, count(*) AS n,
			       count(*) FILTER (WHERE status = 'FAILED') AS failed,
			       count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
			FROM batch_jobs WHERE parent_job_id IS NOT NULL GROUP BY 1)
		SELECT p.job_id, p.status, p.error_details, k.n, k.failed, k.cancelled
		FROM batch_jobs p JOIN kids k USING (job_id)
		WHERE p.is_parent
		  AND ((p.status, p.error_details) IS DISTINCT FROM (
		          CASE WHEN k.cancelled = k.n THEN 'CANCELLED'
		               WHEN k.failed = k.n THEN 'FAILED'
		               WHEN k.failed > 0 AND p.on_child_failure = 'fail_fast' THEN 'FAILED'
		               ELSE 'COMPLETED' END,
		          CASE WHEN k.failed > 0
		               THEN k.failed || ' out of ' || k.n || ' batch jobs failed' END)
		       OR p.completed_at IS NULL)
	}, "$name: every parent is finished, with the status and message its children give");
	is(q1($node, q{
		SELECT string_agg(c.name || ' ' || j.status, ', ' ORDER BY c.name)
		FROM crash_parents c JOIN batch_jobs j USING (job_id)}),
		'A COMPLETED, B FAILED, N COMPLETED, N1 COMPLETED, N2 COMPLETED',
		"$name: A, N1, N2 and N COMPLETED, fail_fast B FAILED");

	q1($node, q{
		CREATE TABLE parents_before AS
		SELECT job_id, status, error_details, total_records, processed_records,
		       success_count, error_count, child_pending, child_processing,
		       child_completed, child_failed, child_cancelled, completed_at
		FROM batch_jobs WHERE is_parent});
	q1($node, q{
		SELECT count(batchjob_refresh_parent(job_id))
		FROM (SELECT job_id FROM batch_jobs WHERE is_parent
		      ORDER BY parent_job_id IS NULL, job_id) p});
	none_ok($node, q{
		(SELECT 'stored' AS what, * FROM parents_before
		 EXCEPT SELECT 'stored', job_id, status, error_details, total_records,
		        processed_records, success_count, error_count, child_pending,
		        child_processing, child_completed, child_failed,
		        child_cancelled, completed_at
		 FROM batch_jobs WHERE is_parent)
		UNION ALL
		(SELECT 'refreshed', job_id, status, error_details, total_records,
		        processed_records, success_count, error_count, child_pending,
		        child_processing, child_completed, child_failed,
		        child_cancelled, completed_at
		 FROM batch_jobs WHERE is_parent
		 EXCEPT SELECT 'refreshed', * FROM parents_before)
	}, "$name: batchjob_refresh_parent() changes no column of any parent");
	verify_empty($node, "$name: batchjob_verify() is empty after the refresh");

	$node->stop('fast');
	$phase->('done');
	return;
}

1;
