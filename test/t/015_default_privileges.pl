# test/t/015_default_privileges.pl - privileges the installing role set
# with ALTER DEFAULT PRIVILEGES never reach batchjob's objects:
#   - a fresh CREATE EXTENSION in a database whose owner gives EXECUTE on
#     every new function, and ALL on every new table and sequence, to a
#     role: that role holds nothing on any object of the extension, and
#     cannot call batchjob_grant;
#   - the 1.1 -> 1.2 update with the same default privileges set after 1.1
#     was installed: the objects 1.2 adds give that role nothing, and the
#     roles batchjob_grant gave a level in 1.1 keep it on the new objects
#     (a worker its tenants, without the NULL a 1.1 list could hold; a
#     submitter a priority ceiling as high as its jobs already have).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use BatchjobCrash;    # finds PostgreSQL's test modules through PG_CONFIG
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('default_privileges');
$node->init;
$node->start;
my $q = sub { my ($db, $sql) = @_; return $node->safe_psql($db, $sql); };

$q->('postgres', <<'EOS');
CREATE ROLE leak LOGIN;
CREATE ROLE w; CREATE ROLE s; CREATE ROLE a;
CREATE DATABASE fresh;
CREATE DATABASE up;
EOS

my $defaults = <<'EOS';
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO leak;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO leak;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO leak;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO leak;
EOS

# every privilege a role holds on an object of the extension, one per line
my $held = sub {
	my ($db, $role) = @_;
	return $q->($db, <<"EOS");
SELECT string_agg(obj || ' ' || privilege_type, E'\\n' ORDER BY obj, privilege_type)
  FROM (SELECT p.oid::regprocedure::text AS obj, a.privilege_type
          FROM pg_proc p, aclexplode(p.proacl) a
         WHERE p.pronamespace = 'public'::regnamespace AND a.grantee = '$role'::regrole
        UNION ALL
        SELECT c.relname::text, a.privilege_type
          FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = '$role'::regrole) x
EOS
};

# the fresh install
$q->('fresh', $defaults);
$q->('fresh', 'CREATE FUNCTION public.probe() RETURNS int LANGUAGE sql AS $$SELECT 1$$');
is($q->('fresh', "SELECT has_function_privilege('leak', 'public.probe()', 'EXECUTE')"),
	't', 'fresh: the default privileges do reach a new function of the owner');
$q->('fresh', 'DROP FUNCTION public.probe()');
$q->('fresh', 'CREATE EXTENSION batchjob');
is($held->('fresh', 'leak'), '',
	'fresh: the role of the default privileges holds nothing on any batchjob object');
my ($rc, $out, $err) = $node->psql('fresh',
	"SELECT batchjob_grant('leak', 'admin')", extra_params => [ '-U', 'leak' ]);
like($err, qr/permission denied for function batchjob_grant/,
	'fresh: it cannot call batchjob_grant');
is($q->('fresh',
		"SELECT proacl FROM pg_proc WHERE proname = 'batchjob_tenant_visible'"),
	'{=X/postgres,postgres=X/postgres}',
	'fresh: batchjob_tenant_visible is still PUBLIC, as intended');

# the update from 1.1
$q->('up', "CREATE EXTENSION batchjob VERSION '1.1'");
$q->('up', <<'EOS');
SELECT batchjob_grant('w', 'worker', ARRAY['s', NULL]);
SELECT batchjob_grant('s', 'submitter');
SELECT batchjob_grant('a', 'admin');
SELECT batchjob_create_parent('{}', 's', 7);
EOS
$q->('up', $defaults);
$q->('up', "ALTER EXTENSION batchjob UPDATE TO '1.2'");
is($held->('up', 'leak'), '',
	'update: the role of the default privileges holds nothing on any batchjob object');
is($q->('up',
		"SELECT has_function_privilege('a', 'batchjob_grant(regrole,text,text[],integer)', 'EXECUTE')"
		  . " AND has_table_privilege('a', 'batch_job_submitters', 'UPDATE')"),
	't', 'update: the admin may call the new batchjob_grant and write batch_job_submitters');
is($q->('up',
		"SELECT has_function_privilege('w', 'batchjob_complete(bigint,text,integer)', 'EXECUTE')"
		  . " AND NOT has_function_privilege('w', 'batchjob_grant(regrole,text,text[],integer)', 'EXECUTE')"),
	't', 'update: the worker keeps its functions, and gets no batchjob_grant');
is($q->('up', "SELECT tenants FROM batch_job_workers WHERE worker = 'w'::regrole"),
	'{s}', 'update: the worker keeps its tenants, without the NULL');
is($q->('up', "SELECT max_priority FROM batch_job_submitters WHERE submitter = 's'::regrole"),
	'7', 'update: the submitter gets the highest priority of its jobs as its ceiling');
is($q->('up', "SELECT count(*) FROM batch_job_submitters"),
	'1', 'update: only the submitter gets a ceiling');

$node->stop;
done_testing();
