# test/t/016_plproxy.pl - scale-out on PL/Proxy: one proxy server and two
# shard servers holding four partition databases (part0 and part2 on shard
# A, part1 and part3 on shard B), each with batchjob and
# batchjob_set_partition(p).  Through the proxy (batchjob_proxy): 20
# parents, nested ones among them, are submitted and split, and 8 worker
# sessions drain them; shard B is stopped with -m immediate in the middle
# of the run (some of its leaves are held back with run_at so that it
# surely has work left, and a session that never finishes holds one of its
# jobs); shard A's parents finish meanwhile, and calls for partitions 1 and
# 3 fail with 08006 "partition N is unreachable"; after B's restart and
# batchjob_reap() every job finishes, none lost, none finished twice.
# Then: a role given its level with batchjob_grant on the proxy and the
# partitions works through the proxy; a proxy-side ROLLBACK leaves what
# the partitions committed; notifications arrive on the partition; a
# claim finds a partition's one pending job from any start and keeps its
# errors for a missing server and for partitions none of which is
# reachable; and a dump of partition 1 restored into a new database keeps
# the partition scheme (new ids still of partition 1, after TRUNCATE ...
# RESTART IDENTITY too).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash;    # finds PostgreSQL's test modules through PG_CONFIG
use IPC::Run;
use Time::HiRes qw(time sleep);
use Test::More;

my $nparts = 4;

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "log_statement = none\nmax_connections = 60\n");
	$node->start;
	return $node;
}

my $shard_a = new_node('shard_a');
my $shard_b = new_node('shard_b');
my $proxy = new_node('proxy');

# partition p lives on shard A when p is even, on B when odd
sub shard_of { return $_[0] % 2 ? $shard_b : $shard_a; }
sub pq { my ($p, $sql) = @_; return shard_of($p)->safe_psql("part$p", $sql); }
sub xq { return $proxy->safe_psql('px', shift); }

# Polls $sql on the proxy (or a node and database given) until it returns
# 't', for at most $secs seconds.
sub wait_until
{
	my ($node, $db, $sql, $secs) = @_;
	my $end = time + $secs;
	while (time < $end)
	{
		my ($rc, $out) = $node->psql($db, $sql);
		return 1 if $rc == 0 && $out eq 't';
		sleep 0.1;
	}
	return 0;
}

for my $p (0 .. $nparts - 1)
{
	shard_of($p)->safe_psql('postgres', "CREATE DATABASE part$p");
	pq($p, 'CREATE EXTENSION batchjob');
	is(pq($p, "SELECT batchjob_set_partition($p)"), $p, "part$p is partition $p");
}

$proxy->safe_psql('postgres', 'CREATE DATABASE px');
xq('CREATE EXTENSION batchjob_proxy CASCADE');
my $opts = join(', ',
	map { my $n = shard_of($_); sprintf("p%d 'host=%s port=%d dbname=part%d connect_timeout=2'", $_, $n->host, $n->port, $_) }
	  0 .. $nparts - 1);
xq("CREATE SERVER batchjob FOREIGN DATA WRAPPER plproxy OPTIONS (query_timeout '30', $opts)");
xq('CREATE USER MAPPING FOR CURRENT_USER SERVER batchjob');

# ---- submit: 12 flat parents, and 4 roots each over 1 nested parent ----
# Every split parent gets 10 batches of 10 records.
my (@flat, @roots, @nested);
for my $i (1 .. 12)
{
	my $id = xq("SELECT job_id FROM batchjob_create_parent('{\"flat\": $i}', 'alice')");
	push @flat, $id;
}
for my $i (1 .. 4)
{
	my $r = xq("SELECT job_id FROM batchjob_create_parent('{\"root\": $i}', 'alice')");
	my $n = xq("SELECT job_id FROM batchjob_create_parent('{\"nested\": $i}', 'alice', parent_job_id => $r)");
	push @roots, $r;
	push @nested, $n;
	is($n & 3, $r & 3, "nested parent $n lives on its root ${r}'s partition");
}
for my $p (@flat, @nested)
{
	xq("SELECT count(*) FROM batchjob_split($p, 100, 10)");
}
my @parents = (@flat, @roots, @nested);
is(scalar @parents, 20, '20 parents submitted through the proxy');
my %parts = map { ($_ & 3) => 1 } @parents;
is(scalar keys %parts, 4, 'new parents went to every partition in turn');
is(xq('SELECT count(*) FROM batch_job_progress'), 20, 'the progress view shows the 20 parents of all partitions');

for my $p (0 .. $nparts - 1)
{
	is(pq($p, "SELECT count(*) FROM batch_jobs WHERE job_id & 63 <> $p OR job_id & 3 <> $p"),
		0, "every id on part$p is of partition $p (job_id & 63 = job_id & 3 = $p)");
	is(pq($p, 'SELECT count(*) FROM batch_jobs c JOIN batch_jobs p ON p.job_id = c.parent_job_id'),
		pq($p, 'SELECT count(*) FROM batch_jobs WHERE parent_job_id IS NOT NULL'),
		"every child on part$p has its parent on part$p");
}

# ---- force B to have work left when it stops ----
for my $p (1, 3)
{
	pq($p, q{UPDATE batch_jobs SET run_at = now() + interval '1 hour'
	          WHERE NOT is_parent AND batch_number >= 7});
}
my $stalled = pq(1, q{SELECT job_id FROM batchjob_claim('stalled', 1, '3 seconds')});
ok($stalled, "a session that never finishes holds job $stalled on part1");

# ---- workers ----
xq(q{
CREATE TABLE audit_claims (job_id bigint, attempt int, worker text);
CREATE TABLE audit_done (job_id bigint, attempt int, worker text, outcome text);
CREATE TABLE ctl (stop boolean);
INSERT INTO ctl VALUES (false);
-- a worker: claim one job, record the claim, report and complete it,
-- record the outcome; each step committed on the proxy.  An error (a
-- partition going away) is recorded and the loop goes on.
CREATE PROCEDURE work(w text) LANGUAGE plpgsql AS $$
DECLARE
    jid bigint;
    att int;
BEGIN
    LOOP
        EXIT WHEN (SELECT stop FROM ctl);
        jid := NULL;
        BEGIN
            SELECT job_id, attempts INTO jid, att FROM batchjob_claim(w, 1, '3 seconds');
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'claim: % %', SQLSTATE, SQLERRM;
        END;
        IF jid IS NULL THEN
            COMMIT;
            PERFORM pg_sleep(0.05);
            CONTINUE;
        END IF;
        INSERT INTO audit_claims VALUES (jid, att, w);
        COMMIT;
        PERFORM pg_sleep(0.01);
        BEGIN
            PERFORM batchjob_progress(jid, 10, 10, 0, w, att);
            PERFORM batchjob_complete(jid, w, att);
            INSERT INTO audit_done VALUES (jid, att, w, 'completed');
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO audit_done VALUES (jid, att, w, SQLSTATE || ' ' || SQLERRM);
        END;
        COMMIT;
    END LOOP;
END
$$;
});

my @workers;
for my $w (1 .. 8)
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $proxy->connstr('px'),
		  '-c', "CALL work('w$w')" ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(150));
	push @workers, { h => $h, out => \$out, err => \$err };
}

ok(wait_until($proxy, 'px', q{SELECT count(*) >= 40 FROM audit_done WHERE outcome = 'completed'}, 60),
	'8 workers through the proxy are completing jobs (40 done)');

# ---- shard B stops in the middle of the run ----
$shard_b->stop('immediate');
note 'shard B stopped with -m immediate';

my @a_parents = grep { ($_ & 1) == 0 } @parents;
my @b_parents = grep { ($_ & 1) == 1 } @parents;
my $a_list = join(',', @a_parents);
ok(wait_until($shard_a, 'part0', 'SELECT true', 5), 'shard A is up');
ok(wait_until($proxy, 'px', qq{
	SELECT bool_and(c.pending + c.processing = 0)
	  FROM unnest('{$a_list}'::bigint[]) AS p(id), batchjob_child_counts(p.id) c}, 60),
	"shard A's parents finish while B is down (child counts through the proxy)");
for my $p (0, 2)
{
	is(pq($p, q{SELECT count(*) FROM batch_jobs WHERE status <> 'COMPLETED'}), 0,
		"every job on part$p is COMPLETED while B is down");
}

for my $p (1, 3)
{
	my ($id) = grep { ($_ & 3) == $p } @b_parents;
	my ($rc, $out, $err) = $proxy->psql('px',
		"\\set VERBOSITY verbose\nSELECT * FROM batchjob_child_counts($id)");
	like($err, qr/ERROR:  08006: partition $p is unreachable/,
		"a call for parent $id on part$p fails with 08006 naming partition $p");
}
{
	my ($rc, $out, $err) = $proxy->psql('px', "SELECT batchjob_complete($stalled, 'stalled')");
	like($err, qr/partition 1 is unreachable/, 'so does a call for a job of part1');
	($rc, $out, $err) = $proxy->psql('px', 'SELECT count(*) FROM batch_job_progress');
	like($err, qr/partition [13] is unreachable/, 'the progress view of all partitions names an unreachable one');
}
my $top = xq(q{SELECT job_id FROM batchjob_create_parent('{"while": "B down"}', 'alice')});
ok(($top & 1) == 0, "a new parent skips the partitions that are down (job $top)");
like(xq('SELECT problem FROM batchjob_verify() WHERE job_id IS NULL ORDER BY 1'),
	qr/^partition 1 is unreachable.*\npartition 3 is unreachable/s,
	'batchjob_verify() through the proxy reports partitions 1 and 3 unreachable');
xq("SELECT batchjob_cancel($top)");

# ---- B comes back ----
$shard_b->start;
note 'shard B restarted';
for my $p (1, 3)
{
	pq($p, q{UPDATE batch_jobs SET run_at = now() WHERE run_at > now()});
}
ok(wait_until($shard_b, 'part1',
		"SELECT locked_until < clock_timestamp() FROM batch_jobs WHERE job_id = $stalled", 15),
	"the stalled job's lease expires");
ok(wait_until($proxy, 'px', q{
	SELECT batchjob_reap() >= 0
	   AND (SELECT sum(pending + processing) = 0 FROM batch_job_progress)}, 90),
	'after the restart and batchjob_reap() through the proxy, every job finishes');

xq('UPDATE ctl SET stop = true');
for my $w (@workers)
{
	eval { $w->{h}->finish; 1 } or do { $w->{h}->kill_kill; };
	is($w->{h}->result(0), 0, 'a worker ended cleanly') or diag ${ $w->{err} };
}

# ---- the end state ----
for my $p (0 .. $nparts - 1)
{
	is(pq($p, q{SELECT count(*) FROM batch_jobs WHERE NOT is_parent AND status <> 'COMPLETED'}),
		0, "every leaf on part$p COMPLETED");
	is(pq($p, "SELECT count(*) FROM batch_jobs WHERE job_id & 3 <> $p"), 0,
		"every id on part$p still of partition $p");
	is(pq($p, 'SELECT count(*) FROM batchjob_verify()'), 0, "batchjob_verify() on part$p is empty");
}
is(xq('SELECT count(*) FROM batchjob_verify()'), 0, 'batchjob_verify() through the proxy is empty');
is(xq(qq{SELECT count(*) FROM batch_job_progress
         WHERE job_id <> $top
           AND (status <> 'COMPLETED' OR processed_records <> 100 OR total_records <> 100
                OR completed <> children)}),
	0, 'every parent (flat, nested and root) COMPLETED with 100 of 100 records, exact');
is(xq("SELECT count(*) FROM batch_job_progress WHERE job_id <> $top"), 20, 'the 20 parents, no more');

# Audit: the leaves of all partitions against what the workers recorded.
my $leaves = join(' UNION ALL ',
	map { "SELECT * FROM leaves_$_" } 0 .. $nparts - 1);
for my $p (0 .. $nparts - 1)
{
	my $rows = pq($p, q{SELECT string_agg(job_id || ':' || attempts || ':' || success_count, ',')
	                      FROM batch_jobs WHERE NOT is_parent});
	xq("CREATE TABLE leaves_$p AS SELECT split_part(x, ':', 1)::bigint AS job_id,
	        split_part(x, ':', 2)::int AS attempts, split_part(x, ':', 3)::bigint AS success
	      FROM unnest(string_to_array('$rows', ',')) x");
}
is(xq("SELECT count(*) FROM ($leaves) l"), 160, '160 leaves in all');
is(xq(qq{SELECT count(*) FROM ($leaves) l
          LEFT JOIN (SELECT job_id, count(*) AS n FROM audit_done
                      WHERE outcome = 'completed' GROUP BY job_id) d USING (job_id)
         WHERE coalesce(d.n, 0) > 1}), 0, 'no job was completed twice');
is(xq(qq{SELECT count(*) FROM ($leaves) l
          LEFT JOIN (SELECT job_id, count(*) AS n FROM audit_done
                      WHERE outcome = 'completed' GROUP BY job_id) d USING (job_id)
         WHERE d.n IS NULL
           AND NOT EXISTS (SELECT FROM audit_done u WHERE u.job_id = l.job_id
                            AND u.outcome LIKE '08006 %')}),
	0, 'every job was completed by a worker that recorded it (or whose completion hit the stopped shard)');
is(xq(qq{SELECT count(*) FROM ($leaves) l
          LEFT JOIN (SELECT job_id, count(*) AS n FROM audit_claims GROUP BY job_id) c USING (job_id)
         WHERE coalesce(c.n, 0) > l.attempts OR l.success <> 10}),
	0, 'every recorded claim is counted in attempts; every leaf counts its 10 records once');
my $errs = xq(q{SELECT string_agg(DISTINCT left(outcome, 60), '; ') FROM audit_done WHERE outcome <> 'completed'});
note "worker calls that failed while B was down: " . ($errs // 'none');
is(xq(q{SELECT count(*) FROM audit_done WHERE outcome <> 'completed' AND outcome NOT LIKE '08006 %'
                                           AND outcome NOT LIKE '55000 %'}),
	0, 'the only worker errors were 08006 (shard down) or 55000 (the job was taken back meanwhile)');

# ---- a role given its level on the proxy and the partitions ----
for my $n ($shard_a, $shard_b, $proxy)
{
	$n->safe_psql('postgres', 'CREATE ROLE app LOGIN');
}
for my $p (0 .. $nparts - 1)
{
	pq($p, q{SELECT batchjob_grant('app', 'submitter'); SELECT batchjob_grant('app', 'worker')});
}
xq(q{SELECT batchjob_grant('app', 'submitter'); SELECT batchjob_grant('app', 'worker')});
my $app = $proxy->safe_psql('px', q{
	SET ROLE app;
	SELECT job_id FROM batchjob_create_parent('{"app": 1}', 'app') \gset
	SELECT count(*) FROM batchjob_split(:job_id, 20, 10);
	SELECT job_id, attempts FROM batchjob_claim('app-w', 1) \gset c_
	SELECT status FROM batchjob_complete(:c_job_id, 'app-w', :c_attempts);
	SELECT pending || '/' || completed FROM batchjob_child_counts(:job_id);
});
is($app, "2\nCOMPLETED\n1/1", 'a role granted submitter and worker on the proxy and the partitions submits, claims and completes through it');
my ($rc, $out, $err) = $proxy->psql('px', 'SET ROLE app; SELECT batchjob_reap()');
like($err, qr/permission denied for function batchjob_reap/, 'but may not reap (admin only)');

# ---- batch mode through the proxy: batchjob_complete_and_claim ----
# Five more children for app, so 6 are pending (1 is left of the parent
# above).  Two claimed; completed while 3 more are claimed; those 3
# completed while the last one is claimed; that one completed with nothing
# left to claim.  Whichever partitions the claims visited (one remote call
# when the done jobs are of one partition, a complete per partition then a
# claim when not), every job is completed once.
my $batch = $proxy->safe_psql('px', q{
	SET ROLE app;
	SELECT job_id FROM batchjob_create_parent('{"app": 2}', 'app') \gset p_
	SELECT count(*) FROM batchjob_split(:p_job_id, 50, 10) \gset s_
	SELECT array_agg(job_id) AS ids FROM batchjob_claim('app-b', 2) \gset a_
	SELECT array_agg(job_id) AS ids FROM batchjob_complete_and_claim(:'a_ids', 'app-b', 3) \gset b_
	SELECT array_agg(job_id) AS ids FROM batchjob_complete_and_claim(:'b_ids', 'app-b', 3) \gset c_
	SELECT count(*) AS n FROM batchjob_complete_and_claim(:'c_ids', 'app-b', 3) \gset d_
	SELECT concat_ws(' ', cardinality(:'a_ids'::bigint[]), cardinality(:'b_ids'::bigint[]),
	                 cardinality(:'c_ids'::bigint[]), :d_n);
	SELECT (pending + processing) || ' ' || completed
	  FROM batch_job_progress WHERE job_id = :p_job_id;
	SELECT count(*) FROM batchjob_claim('app-b', 10);
});
is($batch, "2 3 1 0\n0 5\n0",
	'a worker in batch mode through the proxy: claims 2, then 3, 1 and 0 while completing the last batch; the new parent\'s 5 jobs completed, none left');

# ---- what a proxy-side ROLLBACK does not undo ----
my $rb = $proxy->safe_psql('px', q{
	BEGIN;
	SELECT job_id FROM batchjob_create_parent('{"rolled": "back"}', 'alice') \gset
	ROLLBACK;
	SELECT :job_id;
});
is(shard_of($rb & 3)->safe_psql('part' . ($rb & 3), "SELECT count(*) FROM batch_jobs WHERE job_id = $rb"),
	1, 'a proxy-side ROLLBACK does not undo what the partition committed');

# ---- notifications arrive on the partition ----
{
	my $p = $rb & 3;
	my ($lout, $lerr) = ('', '');
	my $listener = "LISTEN batchjob_jobs_available;\nSELECT 'listening';\nSELECT pg_sleep(3);\n";
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', shard_of($p)->connstr("part$p"), '-f', '-' ],
		'<', \$listener, '>', \$lout, '2>', \$lerr, IPC::Run::timeout(30));
	my $end = time + 10;
	while ($lout !~ /listening/ && time < $end) { $h->pump_nb; sleep 0.05; }
	xq("SELECT count(*) FROM batchjob_split($rb, 10, 10)");
	$h->finish;
	like($lout, qr/Asynchronous notification "batchjob_jobs_available"/,
		"a session listening on part$p hears batchjob_jobs_available for a split made through the proxy");
}

# ---- batchjob_claim's visits ----
# The first visit goes to a random partition without counting the
# partitions; the count is read only when a further visit is due.  With
# one pending job on one partition and none elsewhere, a claim of 5 finds
# it whatever the start, five times over (each time the one batch of a new
# parent nested under $rb).  A database with no server batchjob still
# gives 42704 (PL/Proxy refuses a server without partitions); a server
# whose partitions are all unreachable gives 08006 "no partition is
# reachable".
{
	my $p = $rb & 3;
	is(xq(q{SELECT count(*) FROM batchjob_claim('drain', 100)}), 1,
		"the one pending job left (on part$p) is claimed");
	my @got;
	for my $i (1 .. 5)
	{
		my $n = xq(qq{SELECT job_id FROM batchjob_create_parent('{"solo": $i}', 'alice', parent_job_id => $rb)});
		xq("SELECT count(*) FROM batchjob_split($n, 10, 10)");
		push @got, xq(q{SELECT string_agg(job_id::text, ',') FROM batchjob_claim('solo', 5)});
	}
	is(scalar(grep { /^\d+$/ && ($_ & 3) == $p } @got), 5,
		"five claims of 5 each find the one pending job, on part$p, whatever partition they start on");

	$proxy->safe_psql('postgres', 'CREATE DATABASE px_none');
	$proxy->safe_psql('px_none', 'CREATE EXTENSION batchjob_proxy CASCADE');
	my ($rc, $out, $err) = $proxy->psql('px_none', "\\set VERBOSITY verbose\nSELECT * FROM batchjob_claim('w')");
	like($err, qr/ERROR:  42704: no partitions: the foreign server batchjob lists none/,
		'a claim without a server batchjob fails with 42704');

	my $nowhere = $proxy->basedir . '/no-such-socket-dir';
	$proxy->safe_psql('postgres', 'CREATE DATABASE px_down');
	$proxy->safe_psql('px_down', qq{
		CREATE EXTENSION batchjob_proxy CASCADE;
		CREATE SERVER batchjob FOREIGN DATA WRAPPER plproxy OPTIONS (query_timeout '10',
			p0 'host=$nowhere dbname=part0 connect_timeout=2',
			p1 'host=$nowhere dbname=part1 connect_timeout=2');
		CREATE USER MAPPING FOR CURRENT_USER SERVER batchjob;
	});
	($rc, $out, $err) = $proxy->psql('px_down', "\\set VERBOSITY verbose\nSELECT * FROM batchjob_claim('w', 3)");
	like($err, qr/ERROR:  08006: no partition is reachable/,
		'a claim through a server whose partitions are all unreachable fails with 08006');
}

# ---- dump and restore of one partition ----
my $dump = $shard_b->basedir . '/part1.dump';
$shard_b->command_ok([ 'pg_dump', '-Fc', '-h', $shard_b->host, '-p', $shard_b->port, '-f', $dump, 'part1' ],
	'pg_dump -Fc of part1');
$shard_b->safe_psql('postgres', 'CREATE DATABASE part1r');
$shard_b->command_ok([ 'pg_restore', '-h', $shard_b->host, '-p', $shard_b->port, '-d', 'part1r', $dump ],
	'pg_restore into a new database');
my $rq = sub { return $shard_b->safe_psql('part1r', shift); };
is($rq->('SELECT partition FROM batch_job_partition'), 1, 'the restored database is partition 1');
is($rq->('SELECT count(*) FROM batchjob_verify()'), 0, 'batchjob_verify() on the restored database is empty');
my $max = $rq->('SELECT max(job_id) FROM batch_jobs');
my $new = $rq->(q{SELECT job_id FROM batchjob_create_parent('{"after": "restore"}', 'alice')});
ok($new > $max && ($new & 63) == 1, "a new job after the restore gets id $new, of partition 1, after every restored one");
is($rq->(q{SELECT count(*) FROM batchjob_split(} . $new . q{, 30, 10) WHERE job_id & 63 <> 1}), 0,
	'and so do its children');
$rq->('TRUNCATE batch_jobs RESTART IDENTITY');
is($rq->(q{SELECT job_id FROM batchjob_create_parent('{}', 'alice')}), 65,
	'after TRUNCATE ... RESTART IDENTITY the first id is 65, of partition 1');

done_testing();
