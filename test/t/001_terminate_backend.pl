# test/t/001_terminate_backend.pl - batchjob survives pg_terminate_backend()
# of worker backends in the middle of their transactions.
#
# While four workers claim and finish jobs, a load worker caught finishing
# a job and the victim session (which has completed a job and recorded it
# in the audit, but not committed) are terminated.  The other workers go
# on.  Then: verify is empty, the committed work is all there and the
# uncommitted completion is not, the dead workers' jobs come back through
# batchjob_reap() once their leases expire, and the workload runs to its
# end with every parent right.  See BatchjobCrash.pm.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash;
use Test::More;
use Time::HiRes qw(time sleep);

run_scenario(
	name => 'terminate',
	load_seconds => 6,
	crash => sub {
		my ($node, $victim) = @_;

		# A load worker in the middle of crash_finish(), if one can be
		# caught there (it may have committed by the time the signal lands;
		# the victim below is the case that cannot).
		my $pid = '';
		my $end = time + 10;
		while ($pid eq '' && time < $end)
		{
			$pid = $node->safe_psql('postgres', q{
				SELECT pid FROM pg_stat_activity
				WHERE state = 'active' AND query LIKE 'SELECT crash_finish(%'
				LIMIT 1});
		}
		isnt($pid, '', 'terminate: a load worker is caught finishing a job');
		is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid, 5000)"),
			't', 'terminate: pg_terminate_backend() ends that load worker')
		  if $pid ne '';
		is($node->safe_psql('postgres', "SELECT pg_terminate_backend($victim->{pid}, 5000)"),
			't', 'terminate: pg_terminate_backend() ends the victim before its COMMIT');

		# The other workers go on; every snapshot must be consistent.
		for my $i (1 .. 3)
		{
			sleep 0.3;
			is($node->safe_psql('postgres',
					q{SELECT job_id || ': ' || problem FROM batchjob_verify() LIMIT 5}),
				'', "terminate: batchjob_verify() is empty while the other workers go on ($i of 3)");
		}
		return "locked_by IN ('victim', 'load-" . ($pid || 0) . "')";
	});

done_testing();
