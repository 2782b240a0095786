# test/t/019_node_client.pl - the Node client's tests (clients/node) on a
# node of their own: npm ci, build and a strict type-check, then its
# node:test suites (each test file in a database of its own, see
# clients/node/test/helpers.ts) against this node, through PGHOST, PGPORT
# and PGUSER.  Each node:test test is reported as one assertion of this
# test ("node: suite > test"); a describe() block is not a test of its own,
# as in node's own "# pass N".  A failed npm step, or a run whose end
# does not match what was reported, adds one failed assertion.
#
# npm runs with HOME and its cache in this test's temporary directory, so
# that it needs nothing of the user that runs it but the network (npm ci
# fetches the locked packages); the dashboard's browser test finds
# Debian's chromium.  Skipped when node or npm is not installed.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash ();
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $client = "$FindBin::RealBin/../../clients/node";
for my $tool (qw(node npm))
{
	plan skip_all => "$tool is not installed"
	  unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
}

my $node = PostgreSQL::Test::Cluster->new('node_client');
$node->init;
$node->append_conf('postgresql.conf',
	"log_statement = none\nmax_connections = 60\n");
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;
local $ENV{HOME} = $tmp;
local $ENV{npm_config_cache} = "$tmp/npm-cache";
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGUSER} = scalar getpwuid($<);
delete $ENV{PGDATABASE};

# Runs @cmd in clients/node, bounded; returns its exit status and output.
sub npm
{
	my ($limit, @cmd) = @_;
	my $out = '';
	my $ok = eval {
		IPC::Run::run([@cmd], '<', \undef, '>&', \$out,
			init => sub { chdir $client or die "chdir $client: $!" },
			IPC::Run::timeout($limit));
		1;
	};
	return ($ok ? $? >> 8 : -1, $out . ($ok ? '' : $@));
}

my $t = $PostgreSQL::Test::Utils::timeout_default;
for my $step ([ 'npm', 'ci', '--no-audit', '--no-fund', '--loglevel=error' ],
	[ 'npm', 'run', 'build' ], [ 'npm', 'run', 'typecheck' ])
{
	my ($rc, $out) = npm(10 * $t, @$step);
	next if $rc == 0;
	fail("node: @$step (exit $rc)");
	diag($out);
	$node->stop;
	done_testing();
	exit;
}

# npm test compiles the tests and runs node --test, which prints TAP when
# its output is not a terminal.
my ($rc, $out) = npm(20 * $t, 'npm', 'test');

my (@names, %summary, $pass, $fail);
my @lines = split /\n/, $out;
for (my $i = 0; $i < @lines; $i++)
{
	my $line = $lines[$i];
	if ($line =~ /^( *)# Subtest: (.*)$/)
	{
		my $level = length($1) / 4;
		splice @names, $level;
		$names[$level] = $2;
	}
	elsif ($line =~ /^( *)(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/)
	{
		my ($indent, $failed, $name, $directive) = ($1, $2, $3, $4);
		my $level = length($indent) / 4;
		# its YAML block: the suite marker, and what a failure says
		my @yaml;
		if ($i + 1 < @lines && $lines[ $i + 1 ] =~ /^$indent  ---$/)
		{
			for ($i += 2; $i < @lines && $lines[$i] !~ /^$indent  \.\.\.$/; $i++)
			{
				push @yaml, $lines[$i];
			}
		}
		next if grep { /^\s*type: 'suite'$/ } @yaml;
		my $full = join(' > ', @names[ 0 .. $level - 1 ], $name);
		if (defined $directive && $directive eq 'SKIP')
		{
			Test::More->builder->skip("node: $full");
		}
		elsif (defined $directive)
		{
			TODO: {
				local $TODO = 'node: todo';
				ok(!$failed, "node: $full");
			}
		}
		else
		{
			ok(!$failed, "node: $full") or diag(join("\n", @yaml));
			$failed ? $fail++ : $pass++;
		}
	}
	elsif ($line =~ /^# (pass|fail|cancelled) (\d+)$/)
	{
		$summary{$1} = $2;
	}
}

# The run ended as node says, having reported what node counted.
my $end = join(',', $summary{pass} // '?', ($summary{fail} // 0) + ($summary{cancelled} // 0));
if ($rc != 0 && !$fail || $end ne join(',', $pass // 0, $fail // 0))
{
	fail("node: npm test ended as reported (exit $rc; node counted $end)");
	diag($out);
}

$node->stop;
done_testing();
