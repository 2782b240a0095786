# test/t/017_pgtap.pl - runs every pgTAP suite (test/NAME.sql) on a node of
# its own, as pg_prove would, and reports each pgTAP assertion as one
# assertion of this test ("lifecycle.sql 12: ..."), with pgTAP's
# diagnostics for a failure.
#
# The suites run one after another in one database with pgtap and
# batchjob; each runs in a transaction it rolls back (test/pgtap/
# fixture.sql empties the table inside it), so none sees another's jobs.
# A suite that stops before its plan is done (an error outside an
# assertion, psql exiting non-zero) adds one failed assertion, with psql's
# errors as diagnostics; otherwise the count is exactly the suites' plans.
use strict;
use warnings;
use File::Basename qw(basename);
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash ();
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $suites = "$FindBin::RealBin/..";
my @files = sort glob("$suites/*.sql");
BAIL_OUT("no pgTAP suites in $suites") unless @files;

my $node = PostgreSQL::Test::Cluster->new('pgtap');
$node->init;
# No autovacuum: each suite is one transaction that may grant on
# batch_jobs (an update of its pg_class row) and later TRUNCATE it; an
# autovacuum of batch_jobs in between waits for that transaction to record
# its statistics in the same row, and the TRUNCATE then waits for the
# autovacuum: a deadlock that depends only on when autovacuum wakes up.
$node->append_conf('postgresql.conf', "log_statement = none\nautovacuum = off\n");
$node->start;
my $db = 'bj_pgtap';
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION pgtap; CREATE EXTENSION batchjob');

# Each suite may take a while on a loaded machine (privileges.sql runs
# hundreds of statements as several roles): a generous bound, not a timing.
my $limit = 10 * $PostgreSQL::Test::Utils::timeout_default;

for my $file (@files)
{
	my $name = basename($file);
	my ($out, $err) = ('', '');
	# pg_prove's psql options: no psqlrc, unaligned tuples only, quiet,
	# stop at the first error outside an assertion
	my $ok = eval {
		IPC::Run::run(
			[ 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
				'-P', 'pager=off', '-d', $node->connstr($db), '-f', $file ],
			'<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout($limit));
		1;
	};
	my $rc = $ok ? $? >> 8 : -1;
	$err .= $@ unless $ok;

	my ($plan, $ran, @diag, $last_ok) = (undef, 0);
	my $emit = sub {
		return unless defined $last_ok;
		my ($pass, $num, $desc) = @$last_ok;
		my $label = "$name $num" . ($desc ne '' ? ": $desc" : '');
		if ($desc =~ /\s#\s*SKIP\b\s*(.*)$/i)
		{
			Test::More->builder->skip("$name $num: $1");
		}
		elsif ($desc =~ /\s#\s*TODO\b/i)
		{
			TODO: {
				local $TODO = "$name $num";
				ok($pass, $label);
			}
		}
		else
		{
			ok($pass, $label) or diag(join("\n", @diag));
		}
		($last_ok, @diag) = (undef);
	};
	for my $line (split /\n/, $out)
	{
		if ($line =~ /^1\.\.(\d+)/)
		{
			$plan = $1;
		}
		elsif ($line =~ /^(not )?ok (\d+)(?:\s*-?\s*(.*))?$/)
		{
			$emit->();
			$ran++;
			$last_ok = [ !defined $1, $2, $3 // '' ];
		}
		elsif ($line =~ /^#/)
		{
			push @diag, $line;
		}
	}
	$emit->();
	if ($rc != 0 || !defined $plan || $ran != $plan)
	{
		fail("$name: ran all of its plan ("
			  . ($plan // 'no plan') . " planned, $ran ran, psql exit $rc)");
		diag($err);
	}
}

$node->stop;
done_testing();
