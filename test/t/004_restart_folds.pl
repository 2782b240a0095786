# test/t/004_restart_folds.pl - a rollup difference deferred just before a
# crash is folded after the restart as soon as a worker polls
# (batchjob_claim starts a folder when differences are waiting and none
# runs), without anyone calling batchjob_fold().
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash;
use IPC::Run;
use Test::More;
use Time::HiRes qw(sleep);

my $node = PostgreSQL::Test::Cluster->new('restart_folds');
$node->init;
$node->start;
my $q = sub { $node->safe_psql('postgres', shift) };
$q->('CREATE EXTENSION batchjob');
my $p = $q->(q{SELECT job_id FROM batchjob_create_parent('{}', 'me')});
$q->("SELECT count(*) FROM batchjob_split($p, 20, 10)");
my ($c1, $c2) = split /\n/,
  $q->("SELECT job_id FROM batchjob_claim('w', 2) ORDER BY job_id");
$q->("SELECT batchjob_complete($c1)");

# one session holds the right to fold into P ...
my ($in, $out, $err) =
  ("BEGIN;\nSELECT batchjob_fold($p);\n\\echo holding\nSELECT pg_sleep(60);\n",
	'', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-f', '-' ],
	'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(90));
$h->pump until $out =~ /holding/;

# ... so completing the last child defers its difference
$q->("SELECT batchjob_complete($c2)");
is($q->('SELECT count(*) FROM batch_job_deltas'),
	'1', 'the last completion is deferred while P is busy');

$node->stop('immediate');
eval { $h->kill_kill };
$node->start;

is($q->('SELECT count(*) FROM batch_job_deltas'),
	'1', 'the committed difference survives the crash');
is($q->("SELECT completed FROM batchjob_child_counts($p)"),
	'2', 'batchjob_child_counts counts it at once');

# a worker polling for work starts a folder
$q->("SELECT count(*) FROM batchjob_claim('poller')");
my $folded = 0;
for (1 .. 100)
{
	$folded = 1, last
	  if $q->('SELECT count(*) FROM batch_job_deltas') eq '0';
	sleep 0.1;
}
ok($folded, 'the folder folds it after the restart, within 10 s');
is( $q->(
		"SELECT status || ' ' || (completed_at IS NOT NULL) FROM batch_jobs WHERE job_id = $p"
	),
	'COMPLETED true',
	'the stored parent is COMPLETED');
is($q->('SELECT count(*) FROM batchjob_verify()'), '0', 'batchjob_verify finds nothing');

$node->stop;
done_testing();
