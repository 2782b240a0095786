# test/t/018_hostile.pl - batchjob against the search_path attacks
# PostgreSQL documents for extensions, and against its own roles.
#
# A hostile role (no superuser) plants look-alike functions, operators and
# aggregates that would capture an unqualified call batchjob's scripts or C
# code could make (=, <>, +, -, *, ... on the types the code uses; now(),
# clock_timestamp(), random(), power(), make_interval(), format(),
# generate_series(), date_part(), count(*), sum(bigint), ...): hostile/
# traps.sql.  Every one of them records that it ran (a row in a log table,
# and a WARNING: hostile/log.sql).  Then a superuser installs batchjob and
# drives every function and trigger path (hostile/exercise.sql: create,
# split, children, counts, claim, heartbeat, progress, complete, fail with
# the backoff path, the bulk forms, reap, retry, cancel, plain SQL
# INSERT/UPDATE/DELETE, a parent moved under another by a plain UPDATE,
# refresh, fold, verify, the view, grant and revoke),
# and a difference deferred by one session while another holds the
# parent's right to fold, folded by the folder:
#   A. the traps in public, the extension's schema; default search_path
#   B. the same, with public before pg_catalog on the caller's search_path
#   C. the traps and look-alike tables (hostile/lookalikes.sql) in a schema
#      "hostile", first on the caller's search_path (pg_catalog implicitly
#      before it)
#   D. the same with hostile before pg_catalog
#   E. D plus look-alike temp tables and functions in the caller's pg_temp
#      (hostile/pretemp.sql), pg_temp first on the search_path
#   F. a worker role calling the worker functions under D's search_path
# and checks that no trap ever ran and every result is right.  Also:
#   G. the upgrade: 1.0 installed and filled, traps planted, ALTER
#      EXTENSION UPDATE (to 1.2, through 1.1), then the worker functions
#   H. look-alikes of batchjob's own objects make CREATE EXTENSION and
#      ALTER EXTENSION UPDATE fail; they are never adopted
#   I. no object of the extension depends on an object of the hostile role
#   J. a database whose (hostile) owner puts a trap schema first on the
#      database's search_path: the folder background worker, which runs as
#      the extension's owner, must not run the traps
#   K. an admin (batchjob_grant ... 'admin') must not get code of its own
#      run as the extension's owner through a trigger on batch_jobs
#
# Each scenario is a psql session of its own (BatchjobSteps.pm) whose
# search_path is set at connection (PGOPTIONS), as a caller's would be.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobSteps;
use BatchjobFolder qw(poll);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = "$FindBin::RealBin/hostile";

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->append_conf('postgresql.conf', "log_statement = none\n");
$node->start;

my ($DB, $UPDB, $ADB, $ODB) = ('bj_hostile', 'bj_hostile_up', 'bj_hostile_adopt',
	'bj_hostile_owned');
my ($HROLE, $WROLE, $AROLE) = ('bjt_hostile', 'bjt_hostile_worker', 'bjt_hostile_admin');

# A session running $sql on $db with $path first on its search_path (the
# database's when undefined); its stderr in verbose form.
sub run_step
{
	my ($db, $path, $sql, %vars) = @_;
	local $ENV{PGOPTIONS} = defined $path && $path ne '' ? "-c search_path=$path" : '';
	return step($node, $db, $sql, VERBOSITY => 'verbose', hrole => $HROLE, %vars);
}

# One psql -c call in a clean session (pg_catalog only: everything else is
# qualified); what it printed, stderr after stdout.
sub clean
{
	my ($db, $sql) = @_;
	local $ENV{PGOPTIONS} = '-c search_path=pg_catalog';
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr($db), '-c', $sql ],
		'<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	my $all = $out . $err;
	$all =~ s/\n+$//;
	return $all;
}

# The first $n of @list.
sub head
{
	my ($n, @list) = @_;
	return @list > $n ? @list[ 0 .. $n - 1 ] : @list;
}

sub is_diag
{
	my ($got, $want, $name, $diag) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return is($got, $want, $name) || (defined $diag && diag($diag));
}

$node->safe_psql('postgres', qq{CREATE DATABASE "$_"}) for ($DB, $UPDB, $ADB);
$node->safe_psql('postgres', qq{
	CREATE ROLE "$HROLE" NOLOGIN;
	CREATE ROLE "$WROLE" NOLOGIN;
	CREATE ROLE "$AROLE" NOLOGIN;
	CREATE DATABASE "$ODB" OWNER "$HROLE";
	GRANT CREATE ON DATABASE "$DB" TO "$HROLE";
	GRANT CREATE ON DATABASE "$UPDB" TO "$HROLE";});

# The parent of an exercise as a clean session sees it.
my $P_SQL = q{
	SELECT 'p=' || concat_ws(',', status, error_details, child_pending, child_processing,
	               child_completed, child_failed, child_cancelled, total_records,
	               processed_records, success_count, error_count)
	  FROM public.batch_jobs WHERE job_id = %s
	UNION ALL
	SELECT 's=' || string_agg(status, ',' ORDER BY job_id) FROM public.batch_jobs
	 WHERE job_id = %s OR parent_job_id = %s
	UNION ALL
	SELECT 'q=' || concat_ws(',', status, processed_records, total_records)
	  FROM public.batch_jobs WHERE job_id = %s};
my $P_WANT = 'p=COMPLETED,2 out of 7 batch jobs failed,0,0,3,2,2,75,10,9,1 s=FAILED,FAILED,CANCELLED q=COMPLETED,20,20';
my $CALLS = '5,2,7,7,t,3,t,10,COMPLETED,PENDING,FAILED,PENDING,6,2,1,FAILED,t,1,2,2,PROCESSING,1,COMPLETED,1,0,COMPLETED,13.33,7,0,1';

# Every session's stderr, by scenario, for nothing().
my %errs;

# exercise.sql as scenario $name, and what it returned.
sub exercise
{
	my ($name, $db, $path, $pre) = @_;
	my $s = run_step($db, $path, "\\i $dir/exercise.sql",
		tag => $name, w => "w-$name", wrole => $WROLE,
		(defined $pre ? (pre => "$dir/$pre") : ()));
	push @{ $errs{$name} }, $s->{err};
	is_diag($s->{rc}, 0, "$name: every function and trigger path ran without error", $s->why);
	is($s->get('calls'), $CALLS, "$name: each call returned what it should");
	my ($p, $ss, $q) = map { $s->get($_) || 0 } qw(p s q);
	my $got = clean($db, sprintf($P_SQL, $p, $ss, $ss, $q));
	$got =~ s/\n/ /g;
	is($got, $P_WANT, "$name: the parents rolled up exactly (seen from a clean session)");
	return;
}

# A difference deferred and folded by the folder background worker: session
# a completes one child of a parent in a transaction it keeps open, and so
# holds the parent's right to fold; session b completes another child
# meanwhile and leaves its difference waiting; once a commits, only the
# folder can fold it.  Both sessions use $path.
sub defer
{
	my ($name, $db, $path) = @_;
	my $d = clean($db, qq{UPDATE public.batch_jobs SET run_at = 'infinity' WHERE status = 'PENDING' AND NOT is_parent;
		SELECT job_id FROM public.batchjob_create_parent('{}', 'defer-$name')});
	$d =~ s/.*\n//s;
	$d ||= 0;
	clean($db, qq{SELECT count(*) FROM public.batchjob_split($d, 20, 10);
		UPDATE public.batch_jobs SET run_at = now() - interval '1 second' WHERE parent_job_id = $d;
		SELECT count(*) FROM public.batchjob_claim('wd', 2)});
	my $d1 = clean($db, "SELECT job_id FROM public.batch_jobs WHERE parent_job_id = $d AND batch_number = 1") || 0;
	my $d2 = clean($db, "SELECT job_id FROM public.batch_jobs WHERE parent_job_id = $d AND batch_number = 2") || 0;

	my $sa = do
	{
		local $ENV{PGOPTIONS} = $path ne '' ? "-c search_path=$path" : '';
		$node->background_psql($db, on_error_stop => 0);
	};
	my $a_err = '';
	$sa->query('BEGIN');
	$a_err .= $sa->{stderr};
	$sa->query("SELECT status FROM public.batchjob_complete($d1, 'wd')");
	$a_err .= $sa->{stderr};
	my $sb = run_step($db, $path, "SELECT status FROM public.batchjob_complete($d2, 'wd');");
	my $deferred = clean($db, "SELECT count(*) FROM public.batch_job_deltas WHERE parent_job_id = $d");
	$sa->query('COMMIT');
	$a_err .= $sa->{stderr};
	$sa->quit;
	push @{ $errs{$name} }, $a_err, $sb->{err};
	my $a_rc = $a_err =~ /ERROR/ ? 1 : 0;
	my $waiting = poll($node, $db,
		"SELECT NOT EXISTS (SELECT FROM public.batch_job_deltas WHERE parent_job_id = $d)", 20)
	  ? 0
	  : clean($db, "SELECT count(*) FROM public.batch_job_deltas WHERE parent_job_id = $d");
	is_diag(join(',', $a_rc, $sb->{rc}, $deferred), '0,0,1',
		"$name: the second of two sessions completing children of one parent deferred its difference",
		$a_err . $sb->why);
	is( "$waiting,"
		  . clean($db, "SELECT concat_ws(',', status, child_completed) FROM public.batch_jobs WHERE job_id = $d"),
		'0,COMPLETED,2', "$name: the folder folded it into the parent");
	return;
}

# No trap ran: the log is empty and no session of the scenarios named
# (@from) was warned.
sub nothing
{
	my ($name, $db, @from) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $log = clean($db, "SELECT string_agg(DISTINCT what || ' as ' || who, '; ') FROM hlog.log");
	my @warned = grep { /HOSTILE CODE RAN/ } map { split /\n/ } map { @{ $errs{$_} // [] } } @from;
	is_diag("$log|" . scalar(@warned), '|0', "$name: no hostile code ran",
		join("\n", head(20, @warned)));
	clean($db, 'DELETE FROM hlog.log');
	return;
}

# ---- A-F: one database, traps in public and in schema hostile ----

my $log = run_step($DB, undef, "\\i $dir/log.sql");
clean($DB, qq{GRANT CREATE ON SCHEMA public TO "$HROLE"});
my $tp = run_step($DB, undef, "\\i $dir/traps.sql", s => 'public');
is_diag(join(',', $log->{rc}, $tp->{rc}, $tp->get('traps'), $tp->get('operators')),
	'0,0,57,35', 'A: the hostile role planted 18 functions, 35 operators, sum and count in public',
	$log->why . $tp->why);
my $install = run_step($DB, undef, q{
	CREATE EXTENSION batchjob;
	SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'batchjob';});
$errs{install} = [ $install->{err} ];
is_diag("$install->{rc}," . $install->get('version'), '0,1.2',
	'A: CREATE EXTENSION batchjob succeeds next to the traps', $install->why);
nothing('A: during CREATE EXTENSION', $DB, 'install');

exercise('A', $DB, '');
defer('A', $DB, '');
nothing('A', $DB, 'A');

exercise('B', $DB, 'public,pg_catalog');
nothing('B', $DB, 'B');

my $hs = run_step($DB, undef, qq{
	SET ROLE "$HROLE";
	CREATE SCHEMA hostile;
	GRANT USAGE ON SCHEMA hostile TO PUBLIC;
	RESET ROLE;
	\\i $dir/traps.sql
	\\i $dir/lookalikes.sql}, s => 'hostile');
is_diag(join(',', $hs->{rc}, $hs->get('traps'), $hs->get('operators')), '0,58,35',
	'C: the hostile role planted the same traps and look-alike tables in schema hostile',
	$hs->why);

exercise('C', $DB, 'hostile,public');
nothing('C', $DB, 'C');

exercise('D', $DB, 'hostile,pg_catalog,public');
defer('D', $DB, 'hostile,pg_catalog,public');
nothing('D', $DB, 'D');

exercise('E', $DB, 'pg_temp,hostile,pg_catalog,public', 'pretemp.sql');
nothing('E', $DB, 'E');

# F: the worker functions called by a worker role, hostile schema first
my $k = clean($DB, q{UPDATE public.batch_jobs SET run_at = 'infinity' WHERE status = 'PENDING' AND NOT is_parent;
	SELECT job_id FROM public.batchjob_create_parent('{}', 'F')});
$k =~ s/.*\n//s;
$k ||= 0;
clean($DB, "SELECT count(*) FROM public.batchjob_split($k, 20, 10)");
my $F = run_step($DB, 'hostile,pg_catalog,public', qq{
	SET ROLE "$WROLE";
	SELECT 'read=' OPERATOR(pg_catalog.||) pg_catalog.count(*) FROM public.batchjob_children($k);
	SELECT 'counts=' OPERATOR(pg_catalog.||) total FROM public.batchjob_child_counts($k);
	SELECT job_id AS k1 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) $k AND batch_number OPERATOR(pg_catalog.=) 1 \\gset
	SELECT job_id AS k2 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) $k AND batch_number OPERATOR(pg_catalog.=) 2 \\gset
	SELECT 'claimed=' OPERATOR(pg_catalog.||) pg_catalog.count(*) FROM public.batchjob_claim('wf', 2);
	SELECT 'heartbeat=' OPERATOR(pg_catalog.||) public.batchjob_heartbeat(:k1, 'wf');
	SELECT 'progress=' OPERATOR(pg_catalog.||) processed_records FROM public.batchjob_progress(:k1, 10, 10, 0, 'wf');
	SELECT 'complete=' OPERATOR(pg_catalog.||) status FROM public.batchjob_complete(:k1, 'wf');
	SELECT 'fail=' OPERATOR(pg_catalog.||) status FROM public.batchjob_fail(:k2, 'again', true, 'wf');
	SELECT 'view=' OPERATOR(pg_catalog.||) status FROM public.batch_job_progress WHERE job_id OPERATOR(pg_catalog.=) $k;});
$errs{F} = [ $F->{err} ];
is_diag(join(',', $F->{rc}, map { $F->get($_) } qw(read counts claimed heartbeat progress complete fail view)),
	'0,2,2,2,true,10,COMPLETED,PENDING,PROCESSING',
	'F: a worker role reads, claims, heartbeats, reports, completes and fails (with backoff)',
	$F->why);
is(clean($DB, "SELECT concat_ws(',', status, child_pending, child_completed, processed_records) FROM public.batch_jobs WHERE job_id = $k"),
	'PROCESSING,1,1,10', "F: the worker's changes rolled up");
nothing('F', $DB, 'F');

is(clean($DB, 'SELECT count(*) FROM public.batchjob_verify()'), '0',
	'A-F: batchjob_verify finds nothing wrong');
is( clean($DB, q{SELECT (SELECT count(*) FROM hostile.batch_jobs) + (SELECT count(*) FROM hostile.batch_job_deltas)
	                    + (SELECT count(*) FROM hostile.batch_job_workers)}),
	'0', 'C-F: the look-alike tables in schema hostile were never written');

# I: no member of the extension, and nothing they are built from, belongs
# to the hostile role
my $DEPS_SQL = qq{WITH RECURSIVE ext AS (
    SELECT classid, objid FROM pg_depend
     WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
       AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'batchjob')),
  uses AS (
    SELECT d.refclassid, d.refobjid FROM pg_depend d JOIN ext USING (classid, objid)
    UNION
    SELECT d.refclassid, d.refobjid FROM pg_depend d
      JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
      JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = r.ev_class
    UNION
    SELECT d.refclassid, d.refobjid FROM pg_depend d
      JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
      JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = p.polrelid
    UNION
    SELECT d.refclassid, d.refobjid FROM pg_depend d
      JOIN pg_trigger t ON d.classid = 'pg_trigger'::regclass AND d.objid = t.oid
      JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = t.tgrelid
    UNION
    SELECT d.refclassid, d.refobjid FROM pg_depend d
      JOIN pg_attrdef a ON d.classid = 'pg_attrdef'::regclass AND d.objid = a.oid
      JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = a.adrelid
    UNION
    SELECT d.refclassid, d.refobjid FROM pg_depend d
      JOIN pg_constraint c ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
      JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = c.conrelid)
SELECT count(*) || ' ' || coalesce(string_agg(pg_describe_object(u.refclassid, u.refobjid, 0), '; '), '')
  FROM uses u
 WHERE (u.refclassid = 'pg_proc'::regclass AND (SELECT proowner FROM pg_proc WHERE oid = u.refobjid) = '$HROLE'::regrole::oid)
    OR (u.refclassid = 'pg_operator'::regclass AND (SELECT oprowner FROM pg_operator WHERE oid = u.refobjid) = '$HROLE'::regrole::oid)
    OR (u.refclassid = 'pg_class'::regclass AND (SELECT relowner FROM pg_class WHERE oid = u.refobjid) = '$HROLE'::regrole::oid)
    OR (u.refclassid = 'pg_type'::regclass AND (SELECT typowner FROM pg_type WHERE oid = u.refobjid) = '$HROLE'::regrole::oid)
    OR (u.refclassid = 'pg_namespace'::regclass AND (SELECT nspowner FROM pg_namespace WHERE oid = u.refobjid) = '$HROLE'::regrole::oid)};
is(clean($DB, $DEPS_SQL), '0 ',
	'I: no object of the extension (nor its view, policy, triggers, defaults, constraints) uses an object of the hostile role');

# ---- K: an admin's own trigger must not run as the extension's owner ----

clean($DB, "SELECT public.batchjob_grant('$AROLE', 'admin')");
my $K = run_step($DB, undef, qq{
	SET ROLE "$AROLE";
	CREATE FUNCTION pg_temp.bjt_admin_trigger() RETURNS trigger LANGUAGE plpgsql
	    AS \$\$BEGIN PERFORM hlog.note('admin trigger'); RETURN NULL; END\$\$;
	\\set ON_ERROR_STOP 0
	CREATE TRIGGER bjt_admin_trigger AFTER INSERT OR UPDATE ON public.batch_jobs
	    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.bjt_admin_trigger();
	\\set ON_ERROR_STOP 1
	SELECT 'created=' || pg_catalog.count(*) FROM public.batchjob_create_parent('{}', 'K');
	RESET ROLE;
	DROP TRIGGER IF EXISTS bjt_admin_trigger ON public.batch_jobs;});
is_diag("$K->{rc}," . $K->get('created'), '0,1',
	'K: the admin creates a parent through batchjob_create_parent', $K->why);
is_diag(clean($DB, q{SELECT coalesce(string_agg(DISTINCT who || '/' || super, ','), '') FROM hlog.log WHERE what = 'admin trigger' AND super}),
	'', 'K: no trigger an admin created ever ran as a superuser (admin must not hold TRIGGER on batch_jobs)',
	join("\n", head(5, grep { !/^NOTICE/ } split /\n/, $K->{err})));

# ---- G: the upgrade path ----

my $up10 = run_step($UPDB, undef, q{
	CREATE EXTENSION batchjob VERSION '1.0';
	CREATE TEMP TABLE p AS SELECT (batchjob_create_parent('{}', 'up', 0)).job_id AS p;
	SELECT count(*) FROM p, batchjob_split(p, 40, 10);
	UPDATE batch_jobs SET status = 'PROCESSING' WHERE parent_job_id = (SELECT p FROM p) AND batch_number = 1;
	UPDATE batch_jobs SET status = 'COMPLETED', processed_records = 10, success_count = 10
	 WHERE parent_job_id = (SELECT p FROM p) AND batch_number = 2;
	SELECT 'p=' || p FROM p;});
my $UP = $up10->get('p') || 0;
my $up_traps = run_step($UPDB, undef, qq{
	\\i $dir/log.sql
	GRANT CREATE ON SCHEMA public TO "$HROLE";
	\\set s public
	\\i $dir/traps.sql
	SET ROLE "$HROLE";
	CREATE SCHEMA hostile;
	GRANT USAGE ON SCHEMA hostile TO PUBLIC;
	RESET ROLE;
	\\set s hostile
	\\i $dir/traps.sql
	\\i $dir/lookalikes.sql});
is_diag(join(',', $up10->{rc}, $up_traps->{rc}, $up_traps->get('traps')), '0,0,57',
	'G: batchjob 1.0 installed and filled; traps planted in public and schema hostile',
	$up10->why . $up_traps->why);
my $up = run_step($UPDB, 'hostile,public', q{
	ALTER EXTENSION batchjob UPDATE;
	SELECT 'version=' OPERATOR(pg_catalog.||) extversion FROM pg_catalog.pg_extension
	 WHERE extname OPERATOR(pg_catalog.=) 'batchjob';});
$errs{up} = [ $up->{err} ];
is_diag("$up->{rc}," . $up->get('version'), '0,1.2',
	'G: ALTER EXTENSION batchjob UPDATE succeeds next to the traps', $up->why);
is( clean($UPDB, qq{SELECT concat_ws(',', status, child_processing, child_completed, processed_records,
	                              (SELECT count(*) FROM public.batch_jobs c WHERE c.parent_job_id = p.job_id
	                                  AND c.status = 'PROCESSING' AND c.locked_until IS NOT NULL))
	               FROM public.batch_jobs p WHERE job_id = $UP}),
	'PROCESSING,1,1,10,1', 'G: the 1.0 rows came through; the PROCESSING child got its lease');
nothing('G: during the upgrade', $UPDB, 'up');
exercise('G', $UPDB, 'hostile,pg_catalog,public');
nothing('G', $UPDB, 'G');
is(clean($UPDB, 'SELECT count(*) FROM public.batchjob_verify()'), '0',
	'G: batchjob_verify finds nothing wrong');
is(clean($UPDB, $DEPS_SQL), '0 ',
	'G: no object of the upgraded extension uses an object of the hostile role');

# ---- H: look-alikes of batchjob's own objects are never adopted ----

my $adopt1 = run_step($ADB, undef, qq{
	GRANT CREATE ON SCHEMA public TO "$HROLE";
	SET ROLE "$HROLE";
	CREATE TABLE public.batch_jobs (job_id bigint, status text);
	GRANT ALL ON public.batch_jobs TO PUBLIC;
	RESET ROLE;
	\\set ON_ERROR_STOP 0
	CREATE EXTENSION batchjob;
	\\set ON_ERROR_STOP 1
	SELECT 'installed=' || count(*) FROM pg_extension WHERE extname = 'batchjob';
	SELECT 'owner=' || relowner::regrole FROM pg_class WHERE oid = 'public.batch_jobs'::regclass;});
my $n42P07 = () = $adopt1->{err} =~ /ERROR:  42P07/g;
is_diag(join(',', $n42P07, $adopt1->get('installed'), $adopt1->get('owner')), "1,0,$HROLE",
	'H: a look-alike batch_jobs table makes CREATE EXTENSION fail (42P07); the table is not adopted',
	$adopt1->why);
my $adopt2 = run_step($ADB, undef, qq{
	SET ROLE "$HROLE";
	DROP TABLE public.batch_jobs;
	CREATE FUNCTION public.batchjob_claim(worker text, max_jobs integer DEFAULT 1,
	                                      lease interval DEFAULT '5 minutes')
	    RETURNS SETOF record LANGUAGE sql AS 'SELECT NULL::record WHERE false';
	RESET ROLE;
	\\set ON_ERROR_STOP 0
	CREATE EXTENSION batchjob;
	\\set ON_ERROR_STOP 1
	SELECT 'installed=' || count(*) FROM pg_extension WHERE extname = 'batchjob';});
my $n42723 = () = $adopt2->{err} =~ /ERROR:  42723/g;
is_diag(join(',', $n42723, $adopt2->get('installed')), '1,0',
	'H: a look-alike batchjob_claim makes CREATE EXTENSION fail (42723)', $adopt2->why);
my $adopt3 = run_step($ADB, undef, q{
	CREATE EXTENSION batchjob VERSION '1.0';
	\set ON_ERROR_STOP 0
	ALTER EXTENSION batchjob UPDATE;
	\set ON_ERROR_STOP 1
	SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'batchjob';
	SELECT 'member=' || count(*) FROM pg_depend
	 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	   AND objid = 'public.batchjob_claim(text, integer, interval)'::regprocedure;});
$n42723 = () = $adopt3->{err} =~ /ERROR:  42723/g;
is_diag(join(',', $n42723, $adopt3->get('version'), $adopt3->get('member')), '1,1.0,0',
	'H: ... and makes ALTER EXTENSION UPDATE fail; the extension stays 1.0 and does not adopt it',
	$adopt3->why);

# ---- J: the folder, in a database whose owner is hostile ----

my $owned = run_step($ODB, undef, qq{
	CREATE EXTENSION batchjob;
	\\i $dir/log.sql
	SET ROLE "$HROLE";
	CREATE SCHEMA hostile;
	GRANT USAGE ON SCHEMA hostile TO PUBLIC;
	RESET ROLE;
	\\set s hostile
	\\i $dir/traps.sql
	SET ROLE "$HROLE";
	ALTER DATABASE "$ODB" SET search_path = hostile, pg_catalog, public;
	RESET ROLE;});
is_diag(join(',', $owned->{rc}, $owned->get('traps')), '0,58',
	"J: the database's owner (not a superuser) planted traps and put them first on the database's search_path",
	$owned->why);
defer('J', $ODB, 'public');
nothing('J', $ODB, 'J');
is(clean($ODB, 'SELECT count(*) FROM public.batchjob_verify()'), '0',
	'J: batchjob_verify finds nothing wrong');

$node->stop;
done_testing(54);
