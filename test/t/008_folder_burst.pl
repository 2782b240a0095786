# test/t/008_folder_burst.pl - a burst of commits that defer differences
# starts one folder, not one each (src/fold.c, make_sure_of_folder: one
# backend at a time starts a folder, the others wait for it and then find
# it running).
#
# pgbench runs 8, then 32 clients claiming and completing children of one
# parent, with the default settings (the folder may take the rollups over).
# While they run, pg_stat_activity is sampled: never more than one
# "batchjob folder" backend.  The server log must not say that a folder
# could not be started.  Afterwards nothing waits, the stored counters are
# the children's, and batchjob_verify() is empty.  Nothing here depends on
# how fast the machine is: the run is bounded by time, and the checks hold
# for any number of transactions.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobFolder;
use IPC::Run;
use Test::More;
use Time::HiRes qw(time sleep);

my $node = folder_node('burst', 'max_connections = 50');
my $db = new_db($node, 'bj_burst');
my $q = sub { $node->safe_psql($db, shift) };
my $p = $q->(q{SELECT job_id FROM batchjob_create_parent('{}', 'burst')});
$q->("SELECT count(*) FROM batchjob_split($p, 400000, 10)");
$q->('ANALYZE batch_jobs');
# A commit that finds no worker slot says so at DEBUG1 (and then folds its
# own differences): log that from this database's sessions.
$node->safe_psql('postgres', "ALTER DATABASE $db SET log_min_messages = debug1");

my $script = $node->basedir . '/worker.sql';
PostgreSQL::Test::Utils::append_to_file($script, <<'SQL');
SELECT coalesce((SELECT job_id FROM batchjob_claim('burst-' || :client_id)), 0) AS job_id \gset
SELECT count(batchjob_complete(job_id)) FROM batch_jobs WHERE job_id = :job_id;
SQL

my $sampler = $node->background_psql('postgres', on_error_stop => 1);
for my $clients (8, 32)
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-h', $node->host, '-p', $node->port,
		  '-c', $clients, '-j', 2, '-T', 3, '-f', $script, $db ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	my ($samples, $most) = (0, 0);
	while ($h->pumpable)
	{
		my $n = $sampler->query_safe(
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'batchjob folder'");
		$most = $n if $n > $most;
		$samples++;
		$h->pump_nb;
		sleep 0.02;
	}
	$h->finish;
	my ($done) = $out =~ /number of transactions actually processed: (\d+)/;
	is($h->result(0), 0, "$clients clients: pgbench succeeds ($done transactions)")
	  or diag("$out\n$err");
	unlike($out, qr/number of failed transactions: [1-9]/,
		"$clients clients: no transaction failed");
	cmp_ok($samples, '>', 10, "$clients clients: pg_stat_activity sampled $samples times during the run");
	cmp_ok($most, '<=', 1, "$clients clients: never more than one folder at once");
}
$sampler->quit;

my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
unlike($log, qr/could not start|too many background workers/,
	'the server log never says a folder could not be started');
ok(poll($node, $db, 'SELECT NOT EXISTS (SELECT FROM batch_job_deltas)', 30),
	'the folder folds every waiting difference');
parent_settled_ok($node, $db, $p, 'PROCESSING', 'burst');
cmp_ok($q->("SELECT child_completed FROM batch_jobs WHERE job_id = $p"), '>', 0,
	'the parent counts the completions');
verify_empty($node, $db, 'burst');

$node->stop;
done_testing();
