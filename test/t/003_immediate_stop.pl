# test/t/003_immediate_stop.pl - batchjob survives pg_ctl stop -m immediate
# and a restart (crash recovery from the WAL).
#
# While four workers claim and finish jobs and the victim session sits in
# an uncommitted completion, the server is stopped in immediate mode and
# started again.  Then: verify is empty, the committed work is all there
# and the uncommitted work is not, the dead workers' jobs come back through
# batchjob_reap() once their leases expire, and the workload runs to its
# end with every parent right.  See BatchjobCrash.pm.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash;
use Test::More;

run_scenario(
	name => 'immediate',
	load_seconds => 30,
	crash => sub {
		my ($node) = @_;
		my $offset = -s $node->logfile;

		ok($node->stop('immediate'), 'immediate: pg_ctl stop -m immediate while the workers run');
		ok($node->start, 'immediate: the server starts again');
		like(substr(PostgreSQL::Test::Utils::slurp_file($node->logfile), $offset),
			qr/database system was interrupted|automatic recovery in progress/,
			'immediate: the restart ran crash recovery');
		return "locked_by = 'victim' OR locked_by LIKE 'load-%'";
	});

done_testing();
