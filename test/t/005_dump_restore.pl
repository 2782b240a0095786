# test/t/005_dump_restore.pl - a database dumped in the middle of a run
# comes back exact from a plain pg_dump + pg_restore (custom format), from
# pg_dump | psql (plain format), and from a --data-only dump into a fresh
# CREATE EXTENSION: every row as dumped, no parent counting its children
# twice, no batchjob_parent_done sent by the restore, the identity going
# on where it was, and the work then running to its end.
#
# The source has nested parents (R over S1 and S2), a flat parent F, and a
# parent Z whose figures were all still waiting when the dump was taken;
# children in every status; and waiting differences in batch_job_deltas,
# forced by a session that holds the right to fold into S1 and Z (it called
# batchjob_fold on them in a transaction left open) while another session
# changes their children.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash;    # finds PostgreSQL's test modules through PG_CONFIG
use IPC::Run;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump_restore');
$node->init;
$node->start;
my $dir = $node->basedir;
my $q = sub { my ($db, $sql) = @_; return $node->safe_psql($db, $sql); };

$q->('postgres', 'CREATE DATABASE src');
$q->('src', 'CREATE EXTENSION batchjob');

my $R = $q->('src',
	q{SELECT job_id FROM batchjob_create_parent('{"root": 1}', 'me')});
my $S1 = $q->('src',
	qq{SELECT job_id FROM batchjob_create_parent('{"s": 1}', 'me', parent_job_id => $R)});
$q->('src', "SELECT count(*) FROM batchjob_split($S1, 50, 10)");
my $S2 = $q->('src',
	qq{SELECT job_id FROM batchjob_create_parent('{"s": 2}', 'me', parent_job_id => $R)});
$q->('src', "SELECT count(*) FROM batchjob_split($S2, 30, 10)");
my $F = $q->('src',
	q{SELECT job_id FROM batchjob_create_parent('{"flat": 1}', 'me')});
$q->('src', "SELECT count(*) FROM batchjob_split($F, 40, 10)");
my $Z = $q->('src',
	q{SELECT job_id FROM batchjob_create_parent('{"waiting": 1}', 'me')});

# the oldest seven: S1's five children and S2's first two
my @c = split /\n/,
  $q->('src', "SELECT job_id FROM batchjob_claim('w1', 7) ORDER BY job_id");
is(scalar @c, 7, 'seven children claimed');
$q->('src', <<"EOS");
SELECT batchjob_progress($c[0], 10, 9, 1, 'w1');
SELECT batchjob_complete($c[0], 'w1');
SELECT batchjob_progress($c[1], 10, 10, 0, 'w1');
SELECT batchjob_complete($c[1], 'w1');
SELECT batchjob_progress($c[2], 4, 2, 2, 'w1');
SELECT batchjob_fail($c[2], 'disk full', false, 'w1');
UPDATE batch_jobs SET status = 'CANCELLED' WHERE job_id = $c[3];
SELECT batchjob_progress($c[4], 3, 3, 0, 'w1');
SELECT batchjob_progress($c[6], 10, 10, 0, 'w1');
SELECT batchjob_complete($c[6], 'w1');
UPDATE batch_jobs SET status = 'PROCESSING'
 WHERE parent_job_id = $F AND batch_number = 1;
UPDATE batch_jobs SET status = 'COMPLETED', processed_records = 10,
       success_count = 10
 WHERE parent_job_id = $F AND batch_number = 1;
EOS

# Session A holds the right to fold into S1 and Z until it commits ...
my ($in, $out, $err) =
  ("BEGIN;\nSELECT batchjob_fold($S1), batchjob_fold($Z);\n\\echo holding\n",
	'', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $node->connstr('src'), '-f', '-' ],
	'<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(180));
$h->pump until $out =~ /holding/;

# ... so these committed changes wait in batch_job_deltas
$q->('src', "SELECT batchjob_progress($c[4], 6, 5, 1, 'w1')");
$q->('src', <<"EOS");
INSERT INTO batch_jobs (parent_job_id, batch_number, batch_offset, batch_size,
                        total_records, created_by)
VALUES ($Z, 1, 0, 10, 10, 'me'), ($Z, 2, 10, 10, 10, 'me');
EOS
is($q->('src',
		q{SELECT string_agg(p::text, ' ' ORDER BY p)
		    FROM (SELECT DISTINCT parent_job_id AS p FROM batch_job_deltas) d}),
	"$S1 $Z", 'differences wait for S1 and Z');
is($q->('src', "SELECT child_pending + total_records IS NULL FROM batch_jobs WHERE job_id = $Z"),
	't', 'Z has stored nothing of its children: all of it waits');
is($q->('src',
		'SELECT string_agg(DISTINCT status, \' \' ORDER BY status) FROM batch_jobs WHERE NOT is_parent'),
	'CANCELLED COMPLETED FAILED PENDING PROCESSING',
	'the source has children in every status');

# every column of every row, the waiting differences, the identity
my %snap = (
	rows => q{SELECT string_agg(t::text, E'\n' ORDER BY job_id) FROM batch_jobs t},
	deltas =>
	  q{SELECT string_agg(d::text, E'\n' ORDER BY d::text) FROM batch_job_deltas d},
	sequence =>
	  q{SELECT last_value || ' ' || is_called FROM batch_jobs_job_id_seq});
my %src = map { $_ => $q->('src', $snap{$_}) } keys %snap;

$node->command_ok([ 'pg_dump', '-Fc', '-f', "$dir/src.dump", '-d', 'src' ],
	'pg_dump -Fc while differences wait');
$node->command_ok([ 'pg_dump', '-f', "$dir/src.sql", '-d', 'src' ],
	'pg_dump (plain) while differences wait');
$node->command_ok(
	[ 'pg_dump', '--data-only', '-f', "$dir/src_data.sql", '-d', 'src' ],
	'pg_dump --data-only while differences wait');
is($q->('src', $snap{rows}), $src{rows}, 'the source did not change meanwhile');

$in .= "COMMIT;\n";
$h->finish;

# pg_dump | psql, in a session that listens for batchjob_parent_done and
# ends by sending one itself, so that its notifications are shown
$q->('postgres', 'CREATE DATABASE dst_custom');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', 'dst_custom', "$dir/src.dump" ],
	'pg_restore of the custom-format dump');

$q->('postgres', 'CREATE DATABASE dst_plain');
my $script =
	"LISTEN batchjob_parent_done;\n"
  . PostgreSQL::Test::Utils::slurp_file("$dir/src.sql")
  . "\nNOTIFY batchjob_parent_done, 'control';\n";
my ($pout, $perr) = ('', '');
ok( IPC::Run::run(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
			$node->connstr('dst_plain')
		],
		'<', \$script, '>', \$pout, '2>', \$perr),
	'pg_dump | psql') or diag($perr);
my @notes = $pout =~ /(Asynchronous notification "batchjob_parent_done".*)/g;
is(scalar @notes, 1, 'the plain restore sends no batchjob_parent_done')
  or diag(join "\n", @notes);
like($notes[0] // '', qr/"control"/, '... only the control notification');

$q->('postgres', 'CREATE DATABASE dst_data');
$q->('dst_data', 'CREATE EXTENSION batchjob');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_data', '-f',
		"$dir/src_data.sql" ],
	'pg_dump --data-only | psql into a fresh CREATE EXTENSION');

# stored figures plus waiting differences against the children's
my $mismatch = <<'EOS';
SELECT p.job_id FROM batch_jobs p,
LATERAL (SELECT count(*) FILTER (WHERE status = 'PENDING') AS pe,
                count(*) FILTER (WHERE status = 'PROCESSING') AS pr,
                count(*) FILTER (WHERE status = 'COMPLETED') AS co,
                count(*) FILTER (WHERE status = 'FAILED') AS fa,
                count(*) FILTER (WHERE status = 'CANCELLED') AS ca,
                coalesce(sum(total_records), 0) AS tot,
                coalesce(sum(processed_records), 0) AS done,
                coalesce(sum(success_count), 0) AS ok,
                coalesce(sum(error_count), 0) AS err
           FROM batch_jobs c WHERE c.parent_job_id = p.job_id) k,
LATERAL (SELECT coalesce(sum(child_pending), 0) AS pe,
                coalesce(sum(child_processing), 0) AS pr,
                coalesce(sum(child_completed), 0) AS co,
                coalesce(sum(child_failed), 0) AS fa,
                coalesce(sum(child_cancelled), 0) AS ca,
                coalesce(sum(total_records), 0) AS tot,
                coalesce(sum(processed_records), 0) AS done,
                coalesce(sum(success_count), 0) AS ok,
                coalesce(sum(error_count), 0) AS err
           FROM batch_job_deltas d WHERE d.parent_job_id = p.job_id) w,
LATERAL (SELECT p.child_pending + p.child_processing + p.child_completed
                + p.child_failed + p.child_cancelled = 0 AS none) s
WHERE p.is_parent
  AND (p.child_pending + w.pe, p.child_processing + w.pr,
       p.child_completed + w.co, p.child_failed + w.fa,
       p.child_cancelled + w.ca,
       CASE WHEN s.none THEN 0 ELSE coalesce(p.total_records, 0) END + w.tot,
       CASE WHEN s.none THEN 0 ELSE p.processed_records END + w.done,
       CASE WHEN s.none THEN 0 ELSE p.success_count END + w.ok,
       CASE WHEN s.none THEN 0 ELSE p.error_count END + w.err)
      IS DISTINCT FROM (k.pe, k.pr, k.co, k.fa, k.ca, k.tot, k.done, k.ok, k.err)
EOS
my $verify =
  q{SELECT string_agg(job_id || ': ' || problem, E'\n') FROM batchjob_verify()};
my $max_id = $q->('src', 'SELECT max(job_id) FROM batch_jobs');

for my $db (qw(dst_custom dst_plain dst_data))
{
	for my $what (sort keys %snap)
	{
		is($q->($db, $snap{$what}), $src{$what}, "$db: $what as dumped");
	}
	is($q->($db, $verify), '', "$db: batchjob_verify() is empty");
	is($q->($db, "SELECT string_agg(job_id::text, ' ') FROM ($mismatch) m"),
		'', "$db: stored + waiting figures equal the children's");

	# once folded, a refresh of any parent finds nothing to change
	$q->($db, 'SELECT batchjob_fold()');
	is($q->($db, 'SELECT count(*) FROM batch_job_deltas'),
		'0', "$db: batchjob_fold() folds what waited");
	$q->($db, <<'EOS');
CREATE TABLE parents_before AS
SELECT job_id, to_jsonb(p) - 'updated_at' AS r FROM batch_jobs p WHERE is_parent;
SELECT count(batchjob_refresh_parent(job_id))
  FROM (SELECT job_id FROM batch_jobs WHERE is_parent
        ORDER BY parent_job_id IS NULL, job_id) p;
EOS
	is( $q->(
			$db, q{
		SELECT string_agg(b.job_id::text, ' ')
		  FROM parents_before b JOIN batch_jobs p USING (job_id)
		 WHERE b.r IS DISTINCT FROM to_jsonb(p) - 'updated_at'}),
		'',
		"$db: batchjob_refresh_parent() changes nothing");
	is($q->($db, $mismatch), '', "$db: stored figures equal the children's");

	# new jobs get new ids
	my $new = $q->($db,
		q{SELECT job_id FROM batchjob_create_parent('{"after": 1}', 'me')});
	cmp_ok($new, '>', $max_id, "$db: a new job gets a new id ($new)");

	# work goes on: w1 finishes what it holds, w2 claims and does the rest
	$q->($db, <<"EOS");
SELECT batchjob_progress($c[4], 10, 9, 1, 'w1');
SELECT batchjob_complete($c[4], 'w1');
SELECT batchjob_progress($c[5], 10, 10, 0, 'w1');
SELECT batchjob_complete($c[5], 'w1');
EOS
	for my $round (1 .. 5)
	{
		my @jobs = split /\n/,
		  $q->($db, "SELECT job_id || ' ' || batch_size FROM batchjob_claim('w2', 100)");
		last unless @jobs;
		for (@jobs)
		{
			my ($id, $size) = split / /;
			$q->($db, "SELECT batchjob_progress($id, $size, $size, 0, 'w2')");
			$q->($db, "SELECT batchjob_complete($id, 'w2')");
		}
	}
	$q->($db, 'SELECT batchjob_fold()');
	is($q->($db, q{SELECT count(*) FROM batch_jobs WHERE NOT is_parent
	                 AND status IN ('PENDING', 'PROCESSING')}),
		'0', "$db: every child is finished");
	is( $q->(
			$db, qq{
		SELECT string_agg(job_id || ' ' || status || ' ' || coalesce(error_details, '-'),
		                  E'\n' ORDER BY job_id)
		  FROM batch_jobs WHERE job_id IN ($R, $S1, $S2, $F, $Z)}),
		join("\n",
			"$R COMPLETED -",
			"$S1 COMPLETED 1 out of 5 batch jobs failed",
			"$S2 COMPLETED -",
			"$F COMPLETED -",
			"$Z COMPLETED -"),
		"$db: every parent finishes with the status its children give");
	is($q->($db, $verify), '', "$db: batchjob_verify() is empty at the end");
	is($q->($db, $mismatch), '', "$db: stored figures equal the children's at the end");
}

$node->stop;
done_testing();
