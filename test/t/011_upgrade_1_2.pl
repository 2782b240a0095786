# test/t/011_upgrade_1_2.pl - the 1.1 -> 1.2 upgrade of batchjob, with
# data: a 1.1 database in the middle of a run (nested parents, children in
# every status, a lease, differences waiting in batch_job_deltas) is
# updated with ALTER EXTENSION batchjob UPDATE TO '1.2' and then:
#   - every row of batch_jobs and batch_job_deltas is as it was (the
#     waiting differences get the upgrade's time as deferred_at);
#   - the upgraded extension is made of the same objects as a fresh 1.2
#     install (test/t/upgrade_shape.sql);
#   - batchjob_verify() is empty, and reports a difference that waits
#     longer than the folder's bound;
#   - the work runs to its end through the API, every parent finishing
#     with the status its children give.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash;    # finds PostgreSQL's test modules through PG_CONFIG
use IPC::Run;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade_1_2');
$node->init;
$node->start;
my $q = sub { my ($db, $sql) = @_; return $node->safe_psql($db, $sql); };

$q->('postgres', 'CREATE DATABASE up');
$q->('postgres', 'CREATE DATABASE fresh');
$q->('up', "CREATE EXTENSION batchjob VERSION '1.1'");
is($q->('up', "SELECT extversion FROM pg_extension WHERE extname = 'batchjob'"),
	'1.1', 'batchjob 1.1 installed');

# R over S1 and S2 (fail_fast), a flat parent F
my $R = $q->('up', q{SELECT job_id FROM batchjob_create_parent('{}', 'me')});
my $S1 = $q->('up',
	qq{SELECT job_id FROM batchjob_create_parent('{}', 'me', 0, NULL, 'continue', $R)});
my $S2 = $q->('up',
	qq{SELECT job_id FROM batchjob_create_parent('{}', 'me', 0, NULL, 'fail_fast', $R)});
my $F = $q->('up', q{SELECT job_id FROM batchjob_create_parent('{}', 'me')});
$q->('up', "SELECT count(*) FROM batchjob_split($S1, 60, 10)");
$q->('up', "SELECT count(*) FROM batchjob_split($S2, 30, 10)");
$q->('up', "SELECT count(*) FROM batchjob_split($F, 40, 10)");

my @c = split /\n/,
  $q->('up', "SELECT job_id FROM batchjob_claim('w1', 6) ORDER BY job_id");
is(scalar @c, 6, 'six children claimed under 1.1');
$q->('up', <<"EOS");
SELECT batchjob_progress($c[0], 10, 9, 1, 'w1');
SELECT batchjob_complete($c[0], 'w1');
SELECT batchjob_fail($c[1], 'disk full', false, 'w1');
UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $c[2];
SELECT batchjob_progress($c[3], 4, 4, 0, 'w1');
EOS

# A session holds the right to fold into S1 and F, so these committed
# changes wait in batch_job_deltas across the upgrade.
my ($in, $out, $err) =
  ("BEGIN;\nSELECT batchjob_fold($S1), batchjob_fold($F);\n\\echo holding\n",
	'', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-q', '-At', '-d', $node->connstr('up'), '-f', '-' ],
	'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(180));
$h->pump until $out =~ /holding/;
$q->('up', "SELECT batchjob_complete($c[4], 'w1')");
$q->('up',
	"UPDATE batch_jobs SET status = 'PROCESSING' WHERE parent_job_id = $F AND batch_number = 1"
);
cmp_ok($q->('up', 'SELECT count(*) FROM batch_job_deltas'),
	'>=', 2, 'differences wait in batch_job_deltas before the upgrade');

# every column 1.1 has (1.2 adds has_followers, false on every row)
my $rows = q{SELECT md5(string_agg((to_jsonb(j) - 'has_followers')::text, ','
  ORDER BY job_id)) FROM batch_jobs j WHERE NOT COALESCE((to_jsonb(j) ->> 'has_followers')::boolean, false)};
my $deltas = q{SELECT md5(string_agg(concat_ws(' ', parent_job_id, child_pending,
  child_processing, child_completed, child_failed, child_cancelled,
  total_records, processed_records, success_count, error_count), ','
  ORDER BY parent_job_id, child_processing, child_completed)) FROM batch_job_deltas};
my $rows_before = $q->('up', $rows);
my $deltas_before = $q->('up', $deltas);

# The upgrade runs in the session that holds the right to fold (ALTER
# TABLE waits for every other lock on batch_job_deltas), and what it left
# is read there, before the right goes and the folder folds.
sub in_a
{
	my ($sql, $tag) = @_;
	$in .= "$sql\n\\echo $tag\n";
	$h->pump until $out =~ /\Q$tag\E\n/;
	$out =~ s/\A(.*?)\Q$tag\E\n//s;
	my $got = $1;
	chomp $got;
	return $got;
}
in_a("ALTER EXTENSION batchjob UPDATE TO '1.2';", 'upgraded');
is($err, '', 'ALTER EXTENSION batchjob UPDATE TO 1.2 raises nothing');
is(in_a("SELECT extversion FROM pg_extension WHERE extname = 'batchjob';", 'v'),
	'1.2', "ALTER EXTENSION batchjob UPDATE TO '1.2' succeeds with data");
is(in_a("$rows;", 'rows'), $rows_before, 'every batch_jobs row is as it was');
is(in_a("$deltas;", 'deltas'), $deltas_before,
	'every waiting difference is as it was');
is( in_a(
		"SELECT count(*) FROM batch_job_deltas WHERE deferred_at IS NULL OR deferred_at > now();",
		'at'),
	'0',
	'waiting differences get a deferred_at');
is(in_a('SELECT count(*) FROM batchjob_verify();', 'verify'),
	'0', 'batchjob_verify() is empty right after the upgrade');
like(
	in_a(
		"UPDATE batch_job_deltas SET deferred_at = now() - interval '2 minutes' WHERE parent_job_id = $S1; "
		  . "SELECT string_agg(job_id || ': ' || problem, '; ') FROM batchjob_verify();",
		'stale'),
	qr/^$S1: \d+ differences waiting since .* longer than the 60 seconds a fold may take$/,
	'batchjob_verify() reports a difference older than the bound, and nothing else');
$in .= "COMMIT;\n\\q\n";
$h->finish;
is($err, '', 'the upgrading session saw no error');

$q->('fresh', 'CREATE EXTENSION batchjob');
is($q->('fresh', "SELECT extversion FROM pg_extension WHERE extname = 'batchjob'"),
	'1.2', 'a fresh CREATE EXTENSION batchjob installs 1.2');
my $shape = PostgreSQL::Test::Utils::slurp_file(
	"$FindBin::RealBin/upgrade_shape.sql");
my $shape_up = $q->('up', $shape);
my $shape_fresh = $q->('fresh', $shape);
ok($shape_fresh ne '', 'the shape query describes the fresh install');
is($shape_up, $shape_fresh,
	'the upgraded extension is made of the same objects, columns, functions, privileges and comments as a fresh 1.2'
);

# the folder takes the differences once the right is free
my $waited = 0;
while ($q->('up', 'SELECT count(*) FROM batch_job_deltas') ne '0'
	&& $waited < 300)
{
	select(undef, undef, undef, 0.1);
	$waited++;
}
is($q->('up', 'SELECT count(*) FROM batch_job_deltas'),
	'0', 'the folder folds the differences that waited across the upgrade');

# the rest of the work, through the API
for my $round (1 .. 40)
{
	$q->('up', q{SELECT batchjob_reap()});
	my @jobs = split /\n/,
	  $q->('up', "SELECT job_id FROM batchjob_claim('w2', 50)");
	last unless @jobs || $q->('up',
		"SELECT count(*) FROM batch_jobs WHERE NOT is_parent AND status IN ('PENDING', 'PROCESSING')"
	  ) ne '0';
	$q->('up', "SELECT batchjob_complete($_, 'w2')") for @jobs;
	$q->('up',
		"UPDATE batch_jobs SET locked_until = now() - interval '1 second' WHERE status = 'PROCESSING' AND locked_by IS DISTINCT FROM 'w2'"
	);
}
$q->('up', 'SELECT batchjob_fold()');
is( $q->(
		'up',
		"SELECT string_agg(job_id || ' ' || status, ', ' ORDER BY job_id) FROM batch_jobs WHERE is_parent"
	),
	"$R COMPLETED, $S1 COMPLETED, $S2 COMPLETED, $F COMPLETED",
	'every parent finishes with the status its children give'
);
is($q->('up', 'SELECT count(*) FROM batchjob_verify()'),
	'0', 'batchjob_verify() is empty at the end');

$node->stop;
done_testing();
