# test/t/BatchjobSteps.pm - scenarios run as psql sessions of their own,
# for the notification and 1.0 -> 1.1 -> 1.2 upgrade tests.
#
# A step is one psql session (one backend) running a script; the script
# prints "key=value" lines (say SELECT 'pid=' || pg_backend_pid()) that the
# test reads back with ->get.  A step that fails does not end the test: its
# error is kept (->why) for the assertion that needs it, so each assertion
# fails on its own, with the step's error as its diagnostic.
#
#   my $s = step($node, $db, $sql, tag => 'x');   # psql -v tag=x
#   $s->ran;         # psql exited 0
#   $s->get('pid');  # the first "pid=" line's value, '' if none
#   $s->all('row');  # every "row=" line's value, in order
#   $s->why;         # what psql wrote to stderr
package BatchjobSteps;

use strict;
use warnings;

# BatchjobCrash's BEGIN block finds PostgreSQL's test modules and binaries
# through PG_CONFIG; load it for that alone.
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash ();

use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(step);

# Runs $sql in a new session of $node's $db with ON_ERROR_STOP; %vars
# become psql variables (:'name' and :name in the script).
sub step
{
	my ($node, $db, $sql, %vars) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql($db, $sql,
		stdout => \$out,
		stderr => \$err,
		on_error_stop => 1,
		extra_params => [ map { ('-v', "$_=$vars{$_}") } sort keys %vars ]);
	return bless { rc => $rc, out => $out // '', err => $err // '' },
	  'BatchjobSteps::Step';
}

package BatchjobSteps::Step;

sub ran { return $_[0]->{rc} == 0; }
sub why { return "psql exit $_[0]->{rc}: $_[0]->{err}"; }
sub out { return $_[0]->{out}; }

sub all
{
	my ($self, $key) = @_;
	return map { /^\Q$key\E=(.*)$/ ? ($1) : () } split /\n/, $self->{out};
}

sub get
{
	my ($self, $key) = @_;
	my @v = $self->all($key);
	return @v ? $v[0] : '';
}

1;
