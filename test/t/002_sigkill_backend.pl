# test/t/002_sigkill_backend.pl - batchjob survives a backend killed with
# SIGKILL, after which the postmaster ends every session and recovers.
#
# While four workers claim and finish jobs, the victim session (which has
# completed a job and recorded it in the audit, but not committed) is
# killed with SIGKILL.  The postmaster then ends every other session,
# workers and folder alike, and runs crash recovery.  Then: verify is
# empty, the committed work is all there and the uncommitted work is not,
# the dead workers' jobs come back through batchjob_reap() once their
# leases expire, and the workload runs to its end with every parent right.
# See BatchjobCrash.pm.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash;
use Test::More;

run_scenario(
	name => 'sigkill',
	load_seconds => 30,
	crash => sub {
		my ($node, $victim) = @_;
		my $offset = -s $node->logfile;

		is(kill('KILL', $victim->{pid}), 1, 'sigkill: SIGKILL sent to the victim backend');
		ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset),
			'sigkill: the postmaster ends every session and reinitializes');
		ok(BatchjobCrash::wait_until($node, 'SELECT true', 60),
			'sigkill: the server accepts connections again after crash recovery');
		return "locked_by = 'victim' OR locked_by LIKE 'load-%'";
	});

done_testing();
