#!/usr/bin/env bash
# test/hostile/run.sh - batchjob against the search_path attacks PostgreSQL
# documents for extensions, and against its own roles.
#
# A hostile role (no superuser) plants look-alike functions, operators and
# aggregates that would capture an unqualified call batchjob's scripts or C
# code could make (=, <>, +, -, *, ... on the types the code uses; now(),
# clock_timestamp(), random(), power(), make_interval(), format(),
# generate_series(), date_part(), count(*), sum(bigint), ...).  Every one of
# them records that it ran (a row in a log table, and a WARNING).  Then a
# superuser installs batchjob and drives every function and trigger path
# (create, split, children, counts, claim, heartbeat, progress, complete,
# fail with the backoff path, the bulk forms, reap, retry, cancel, plain SQL
# INSERT/UPDATE/DELETE, refresh, fold, verify, the view, grant and revoke,
# and a difference deferred by two sessions and folded by the folder):
#   A. the traps in public, the extension's schema; default search_path
#   B. the same, with public before pg_catalog on the caller's search_path
#   C. the traps and look-alike tables in a schema "hostile", first on the
#      caller's search_path (pg_catalog implicitly before it)
#   D. the same with hostile before pg_catalog
#   E. D plus look-alike temp tables and functions in the caller's pg_temp,
#      pg_temp first on the search_path
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
# Prints TAP ("1..N", then "ok N - ..." or "not ok N - ..."); exits non-zero
# when a test fails.  Creates its own databases and roles (names end in the
# process id) and drops them at the end.
#
# Usage: bash test/hostile/run.sh, with PGHOST, PGPORT and PGUSER set (a
# superuser) and the extension installed (make install).

set -uo pipefail

TAG=$$
DB=bj_sec_hostile_$TAG			# scenarios A-F, I, K
UPDB=bj_sec_hostile_up_$TAG		# G
ADB=bj_sec_hostile_adopt_$TAG	# H
ODB=bj_sec_hostile_owned_$TAG	# J
HROLE=bjt_hostile_$TAG
WROLE=bjt_hostile_worker_$TAG
AROLE=bjt_hostile_admin_$TAG
PLAN=54
work=$(mktemp -d /tmp/batchjob-hostile.XXXXXX)
n=0
failed=0

q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
	local d r
	# WITH (FORCE): a folder background worker may still be connected
	for d in "$DB" "$UPDB" "$ADB" "$ODB"; do
		q -d postgres -c "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null 2>&1
	done
	for r in "$HROLE" "$WROLE" "$AROLE"; do
		q -d postgres -c "DROP ROLE IF EXISTS \"$r\"" >/dev/null 2>&1
	done
	rm -rf "$work"
}
trap cleanup EXIT

result() {	# result OK DESCRIPTION [DIAGNOSTIC]
	n=$((n + 1))
	if [ "$1" = 1 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		[ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/# /'
		failed=$((failed + 1))
	fi
}
is() {	# is GOT WANT DESCRIPTION [DIAGNOSTIC]
	if [ "$1" = "$2" ]; then
		result 1 "$3"
	else
		result 0 "$3" "$(printf 'got:  %s\nwant: %s\n%s' "$1" "$2" "${4:-}")"
	fi
}
# step NAME DB [PATH]: runs the SQL on stdin in one session whose
# search_path is PATH (default: the database's); its "key=value" lines are
# read back with get NAME KEY
step() {
	local opts=""
	[ -n "${3:-}" ] && opts="-c search_path=$3"
	PGOPTIONS="$opts" q -d "$2" -v VERBOSITY=verbose >"$work/$1.out" 2>"$work/$1.err"
	echo $? >"$work/$1.rc"
}
get() { sed -n "s/^$2=//p" "$work/$1.out" | head -n 1; }
rc() { cat "$work/$1.rc"; }
why() { cat "$work/$1.err"; }
# a clean session: pg_catalog only (everything else is qualified)
clean() { PGOPTIONS="-c search_path=pg_catalog" q -d "$1" -c "$2" 2>&1; }

echo "1..$PLAN"

for d in "$DB" "$UPDB" "$ADB"; do
	if ! q -d postgres -c "CREATE DATABASE \"$d\"" >"$work/create.err" 2>&1; then
		echo "Bail out! cannot create database $d: $(cat "$work/create.err")"
		exit 1
	fi
done
if ! q -d postgres >"$work/roles.err" 2>&1 <<-SQL
	CREATE ROLE "$HROLE" NOLOGIN;
	CREATE ROLE "$WROLE" NOLOGIN;
	CREATE ROLE "$AROLE" NOLOGIN;
	CREATE DATABASE "$ODB" OWNER "$HROLE";
	GRANT CREATE ON DATABASE "$DB" TO "$HROLE";
	GRANT CREATE ON DATABASE "$UPDB" TO "$HROLE";
SQL
then
	echo "Bail out! cannot create the roles: $(cat "$work/roles.err")"
	exit 1
fi

# ---- the traps ----

# log.sql: run as the hostile role; the log every trap writes to
cat >"$work/log.sql" <<-SQL
	SET ROLE "$HROLE";
	CREATE SCHEMA hlog;
	GRANT USAGE ON SCHEMA hlog TO PUBLIC;
	CREATE TABLE hlog.log (at timestamptz DEFAULT pg_catalog.clock_timestamp(),
	                       who name, super boolean, what text);
	GRANT INSERT ON hlog.log TO PUBLIC;
	CREATE FUNCTION hlog.note(what text) RETURNS void LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS \$\$BEGIN
	    INSERT INTO hlog.log (who, super, what)
	        SELECT current_user, r.rolsuper, what FROM pg_catalog.pg_roles r
	         WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
	    RAISE WARNING 'HOSTILE CODE RAN: % as %', what, current_user;
	END\$\$;
	CREATE FUNCTION hlog.note_trigger() RETURNS trigger LANGUAGE plpgsql
	AS \$\$BEGIN
	    PERFORM hlog.note('trigger on ' OPERATOR(pg_catalog.||) TG_TABLE_SCHEMA
	                      OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) TG_TABLE_NAME);
	    RETURN NULL;
	END\$\$;
	RESET ROLE;
SQL

# traps.sql: run as the hostile role with psql variable s, the schema to
# plant in
cat >"$work/traps.sql" <<-SQL
	SET ROLE "$HROLE";
	SELECT pg_catalog.set_config('bjt.schema', :'s', false);
	DO \$do\$
	DECLARE
	    s text := pg_catalog.current_setting('bjt.schema');
	    f record;
	    i integer := 0;
	BEGIN
	    FOR f IN SELECT * FROM (VALUES
	        ('now', '', 'timestamptz', 'pg_catalog.now()'),
	        ('clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'),
	        ('statement_timestamp', '', 'timestamptz', 'pg_catalog.statement_timestamp()'),
	        ('random', '', 'double precision', 'pg_catalog.random()'),
	        ('power', 'numeric, double precision', 'double precision',
	         'pg_catalog.power(\$1::pg_catalog.float8, \$2)'),
	        ('power', 'double precision, double precision', 'double precision',
	         'pg_catalog.power(\$1, \$2)'),
	        ('power', 'numeric, numeric', 'numeric', 'pg_catalog.power(\$1, \$2)'),
	        ('make_interval', 'secs double precision', 'interval',
	         'pg_catalog.make_interval(secs => \$1)'),
	        ('make_interval', 'secs numeric', 'interval',
	         'pg_catalog.make_interval(secs => \$1::pg_catalog.float8)'),
	        ('format', 'text, text, integer, integer', 'text',
	         'pg_catalog.format(\$1, \$2, \$3, \$4)'),
	        ('format', 'text, text', 'text', 'pg_catalog.format(\$1, \$2)'),
	        ('format', 'text, text, text', 'text', 'pg_catalog.format(\$1, \$2, \$3)'),
	        ('date_part', 'text, interval', 'double precision', 'pg_catalog.date_part(\$1, \$2)'),
	        ('round', 'numeric, integer', 'numeric', 'pg_catalog.round(\$1, \$2)'),
	        ('cardinality', 'text[]', 'integer', 'pg_catalog.cardinality(\$1)'),
	        ('jsonb_build_object', 'text, bigint, text, text', 'jsonb',
	         'pg_catalog.jsonb_build_object(\$1, \$2, \$3, \$4)'),
	        ('batchjob_tenant_visible', 'text', 'boolean', 'true'),
	        ('current_setting', 'text', 'text', 'pg_catalog.current_setting(\$1)')
	    ) v(name, args, ret, expr) LOOP
	        -- in public, a look-alike of batchjob's own function would only make
	        -- CREATE EXTENSION fail (see H); plant those in other schemas
	        CONTINUE WHEN pg_catalog.starts_with(f.name, 'batchjob')
	                      AND s OPERATOR(pg_catalog.=) 'public';
	        EXECUTE pg_catalog.format(
	            'CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql VOLATILE'
	            ' AS %L', s, f.name, f.args, f.ret,
	            pg_catalog.format('BEGIN PERFORM hlog.note(%L); RETURN %s; END',
	                              s OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) f.name
	                                OPERATOR(pg_catalog.||) '(' OPERATOR(pg_catalog.||) f.args
	                                OPERATOR(pg_catalog.||) ')', f.expr));
	    END LOOP;
	    EXECUTE pg_catalog.format(
	        'CREATE FUNCTION %I.generate_series(integer, integer) RETURNS SETOF integer'
	        ' LANGUAGE plpgsql VOLATILE AS %L', s,
	        pg_catalog.format('BEGIN PERFORM hlog.note(%L);'
	                          ' RETURN QUERY SELECT pg_catalog.generate_series(\$1, \$2); END',
	                          s OPERATOR(pg_catalog.||) '.generate_series(integer, integer)'));
	    FOR f IN SELECT * FROM (VALUES
	        ('=', 'bigint', 'bigint', 'boolean', ''),
	        ('=', 'text', 'text', 'boolean', ''),
	        ('=', 'bigint', 'integer', 'boolean', ''),
	        ('=', 'integer', 'integer', 'boolean', ''),
	        ('=', 'oid', 'oid', 'boolean', ''),
	        ('=', 'regrole', 'regrole', 'boolean', '::pg_catalog.oid'),
	        ('=', 'name', 'name', 'boolean', ''),
	        ('<>', 'bigint', 'bigint', 'boolean', ''),
	        ('<>', 'text', 'text', 'boolean', ''),
	        ('<>', 'oid', 'oid', 'boolean', ''),
	        ('>=', 'integer', 'integer', 'boolean', ''),
	        ('>=', 'bigint', 'integer', 'boolean', ''),
	        ('>', 'bigint', 'integer', 'boolean', ''),
	        ('>', 'bigint', 'bigint', 'boolean', ''),
	        ('>', 'integer', 'integer', 'boolean', ''),
	        ('<', 'integer', 'integer', 'boolean', ''),
	        ('<', 'bigint', 'bigint', 'boolean', ''),
	        ('<=', 'timestamptz', 'timestamptz', 'boolean', ''),
	        ('<', 'timestamptz', 'timestamptz', 'boolean', ''),
	        ('<=', 'bigint', 'bigint', 'boolean', ''),
	        ('+', 'bigint', 'bigint', 'bigint', ''),
	        ('+', 'integer', 'integer', 'integer', ''),
	        ('+', 'timestamptz', 'interval', 'timestamptz', ''),
	        ('+', 'numeric', 'double precision', 'double precision', '::pg_catalog.float8'),
	        ('+', 'numeric', 'numeric', 'numeric', ''),
	        ('-', 'integer', 'integer', 'integer', ''),
	        ('-', 'bigint', 'bigint', 'bigint', ''),
	        ('-', 'bigint', 'integer', 'bigint', ''),
	        ('-', 'timestamptz', 'timestamptz', 'interval', ''),
	        ('*', 'integer', 'bigint', 'bigint', ''),
	        ('*', 'double precision', 'double precision', 'double precision', ''),
	        ('*', 'numeric', 'double precision', 'double precision', '::pg_catalog.float8'),
	        ('*', 'numeric', 'numeric', 'numeric', ''),
	        ('/', 'numeric', 'numeric', 'numeric', ''),
	        ('||', 'text', 'text', 'text', '')
	    ) v(op, l, r, ret, conv) LOOP
	        i := i OPERATOR(pg_catalog.+) 1;
	        EXECUTE pg_catalog.format(
	            'CREATE FUNCTION %I.trap_op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql VOLATILE'
	            ' AS %L', s, i, f.l, f.r, f.ret,
	            pg_catalog.format('BEGIN PERFORM hlog.note(%L);'
	                              ' RETURN \$1%s OPERATOR(pg_catalog.%s) \$2; END',
	                              s OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) f.op
	                                OPERATOR(pg_catalog.||) ' (' OPERATOR(pg_catalog.||) f.l
	                                OPERATOR(pg_catalog.||) ', ' OPERATOR(pg_catalog.||) f.r
	                                OPERATOR(pg_catalog.||) ')',
	                              f.conv, f.op));
	        EXECUTE pg_catalog.format(
	            'CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.trap_op_%s)',
	            s, f.op, f.l, f.r, s, i);
	    END LOOP;
	    EXECUTE pg_catalog.format(
	        'CREATE FUNCTION %I.trap_sum(numeric, bigint) RETURNS numeric LANGUAGE plpgsql'
	        ' AS %L', s, pg_catalog.format(
	            'BEGIN PERFORM hlog.note(%L);'
	            ' RETURN COALESCE(\$1, 0) OPERATOR(pg_catalog.+) \$2; END',
	            s OPERATOR(pg_catalog.||) '.sum(bigint)'));
	    EXECUTE pg_catalog.format(
	        'CREATE AGGREGATE %I.sum(bigint) (SFUNC = %I.trap_sum, STYPE = numeric)', s, s);
	    EXECUTE pg_catalog.format(
	        'CREATE FUNCTION %I.trap_count(bigint) RETURNS bigint LANGUAGE plpgsql'
	        ' AS %L', s, pg_catalog.format(
	            'BEGIN PERFORM hlog.note(%L); RETURN \$1 OPERATOR(pg_catalog.+) 1; END',
	            s OPERATOR(pg_catalog.||) '.count(*)'));
	    EXECUTE pg_catalog.format(
	        'CREATE AGGREGATE %I.count(*) (SFUNC = %I.trap_count, STYPE = bigint, INITCOND = 0)',
	        s, s);
	END
	\$do\$;
	SELECT 'traps=' || pg_catalog.count(*) FROM pg_catalog.pg_proc
	 WHERE pronamespace OPERATOR(pg_catalog.=) :'s'::regnamespace
	   AND proowner OPERATOR(pg_catalog.=) '$HROLE'::regrole::oid;
	SELECT 'operators=' || pg_catalog.count(*) FROM pg_catalog.pg_operator
	 WHERE oprnamespace OPERATOR(pg_catalog.=) :'s'::regnamespace
	   AND oprowner OPERATOR(pg_catalog.=) '$HROLE'::regrole::oid;
	RESET ROLE;
SQL

# lookalikes.sql: tables named like batchjob's, with triggers that log, in
# schema s, all owned by the hostile role (the superuser copies the columns,
# which the hostile role may not read)
cat >"$work/lookalikes.sql" <<-SQL
	CREATE TABLE :"s".batch_jobs (LIKE public.batch_jobs);
	CREATE TABLE :"s".batch_job_deltas (LIKE public.batch_job_deltas);
	CREATE TABLE :"s".batch_job_workers (worker regrole, tenants text[]);
	ALTER TABLE :"s".batch_jobs OWNER TO "$HROLE";
	ALTER TABLE :"s".batch_job_deltas OWNER TO "$HROLE";
	ALTER TABLE :"s".batch_job_workers OWNER TO "$HROLE";
	SET ROLE "$HROLE";
	GRANT ALL ON :"s".batch_jobs, :"s".batch_job_deltas, :"s".batch_job_workers TO PUBLIC;
	CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON :"s".batch_jobs
	    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
	CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON :"s".batch_job_deltas
	    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
	CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON :"s".batch_job_workers
	    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
	CREATE VIEW :"s".batch_job_progress AS SELECT * FROM :"s".batch_jobs;
	RESET ROLE;
SQL

# pretemp.sql: the caller's own look-alikes in pg_temp (scenario E)
cat >"$work/pretemp.sql" <<-'SQL'
	CREATE TEMP TABLE batch_jobs (LIKE public.batch_jobs);
	CREATE TEMP TABLE batch_job_deltas (LIKE public.batch_job_deltas);
	CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON pg_temp.batch_jobs
	    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
	CREATE TRIGGER log_it AFTER INSERT OR UPDATE OR DELETE ON pg_temp.batch_job_deltas
	    FOR EACH STATEMENT EXECUTE FUNCTION hlog.note_trigger();
	CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE plpgsql
	    AS $$BEGIN PERFORM hlog.note('pg_temp.now()'); RETURN pg_catalog.now(); END$$;
	CREATE FUNCTION pg_temp.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql
	    AS $$BEGIN PERFORM hlog.note('pg_temp.clock_timestamp()');
	             RETURN pg_catalog.clock_timestamp(); END$$;
	CREATE FUNCTION pg_temp.power(numeric, double precision) RETURNS double precision
	    LANGUAGE plpgsql AS $$BEGIN PERFORM hlog.note('pg_temp.power(numeric, float8)');
	                             RETURN pg_catalog.power($1::pg_catalog.float8, $2); END$$;
	CREATE FUNCTION pg_temp.batchjob_tenant_visible(text) RETURNS boolean LANGUAGE plpgsql
	    AS $$BEGIN PERFORM hlog.note('pg_temp.batchjob_tenant_visible(text)'); RETURN true; END$$;
SQL

# exercise.sql: every function and trigger path, as the caller; every name
# the caller itself writes is qualified, so that only batchjob's own
# lookups can meet a trap.  Prints key=value lines.
cat >"$work/exercise.sql" <<-'SQL'
	\if :{?pre}
	\i :pre
	\endif
	UPDATE public.batch_jobs SET run_at = 'infinity'
	 WHERE status OPERATOR(pg_catalog.=) 'PENDING' AND NOT is_parent;
	SELECT job_id AS p FROM public.batchjob_create_parent('{"x": 1}', :'tag', 0, NULL, 'continue', NULL) \gset
	SELECT pg_catalog.count(*) AS n_split FROM public.batchjob_split(:p, 50, 10) \gset
	SELECT job_id AS c6 FROM public.batchjob_create_child(:p, 6, 50, 5) \gset
	SELECT job_id AS s FROM public.batchjob_create_parent('{}', :'tag', 0, NULL, 'fail_fast', :p) \gset
	SELECT pg_catalog.count(*) AS n_split_s FROM public.batchjob_split(:s, 20, 10) \gset
	SELECT job_id AS c1 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 1 \gset
	SELECT job_id AS c2 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 2 \gset
	SELECT job_id AS c3 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 3 \gset
	SELECT job_id AS c4 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 4 \gset
	SELECT job_id AS c5 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :p AND batch_number OPERATOR(pg_catalog.=) 5 \gset
	SELECT job_id AS g1 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) :s AND batch_number OPERATOR(pg_catalog.=) 1 \gset
	SELECT pg_catalog.count(*) AS n_children FROM public.batchjob_children(:p) \gset
	SELECT total AS n_counts FROM public.batchjob_child_counts(:p) \gset
	SELECT (public.batchjob_next_pending()).job_id OPERATOR(pg_catalog.=) :c1 AS next_is_c1 \gset
	SELECT pg_catalog.count(*) AS n_claim1 FROM public.batchjob_claim(:'w', 3) \gset
	SELECT public.batchjob_heartbeat(:c1, :'w') AS hb \gset
	SELECT processed_records AS c1_processed FROM public.batchjob_progress(:c1, 10, 9, 1, :'w') \gset
	SELECT status AS st_c1 FROM public.batchjob_complete(:c1, :'w') \gset
	SELECT status AS st_c2 FROM public.batchjob_fail(:c2, 'boom', true, :'w') \gset
	SELECT status AS st_c3 FROM public.batchjob_fail(:c3, 'final', false, :'w') \gset
	SELECT status AS st_c3r FROM public.batchjob_retry(:c3) \gset
	UPDATE public.batch_jobs SET run_at = 'infinity' WHERE job_id OPERATOR(pg_catalog.=) :c2;
	SELECT pg_catalog.count(*) AS n_claim2 FROM public.batchjob_claim(:'w', 10) \gset
	SELECT public.batchjob_complete(ARRAY[:c4, :c5]::bigint[]) AS n_done \gset
	SELECT public.batchjob_fail(ARRAY[:c6]::bigint[], 'x', false) AS n_failed \gset
	SELECT status AS st_g1 FROM public.batchjob_fail(:g1, 'g', false, :'w') \gset
	SELECT public.batchjob_heartbeat(:c3, :'w', '1 microsecond') AS hb3 \gset
	SELECT pg_catalog.pg_sleep(0.05);
	SELECT public.batchjob_reap() AS n_reaped \gset
	SELECT public.batchjob_cancel(:p) AS n_cancelled \gset
	SELECT job_id AS q FROM public.batchjob_create_parent('{}', :'tag') \gset
	SELECT pg_catalog.count(*) AS n_split_q FROM public.batchjob_split(:q, 20, 10) \gset
	UPDATE public.batch_jobs SET status = 'PROCESSING' WHERE parent_job_id OPERATOR(pg_catalog.=) :q;
	UPDATE public.batch_jobs SET status = 'COMPLETED', processed_records = 10, success_count = 10
	 WHERE parent_job_id OPERATOR(pg_catalog.=) :q;
	INSERT INTO public.batch_jobs (parent_job_id, batch_number, batch_offset, batch_size,
	                               total_records, created_by, run_at)
	VALUES (:q, 3, 20, 5, 5, :'tag', 'infinity') RETURNING job_id AS q3 \gset
	SELECT status AS st_q_reopened FROM public.batch_jobs WHERE job_id OPERATOR(pg_catalog.=) :q \gset
	DELETE FROM public.batch_jobs WHERE job_id OPERATOR(pg_catalog.=) :q3;
	SELECT job_id AS t FROM public.batchjob_create_parent('{}', :'tag') \gset
	SELECT pg_catalog.count(*) AS n_split_t FROM public.batchjob_split(:t, 10, 10) \gset
	DELETE FROM public.batch_jobs WHERE job_id OPERATOR(pg_catalog.=) :t;
	SELECT status AS st_refresh FROM public.batchjob_refresh_parent(:p) \gset
	SELECT public.batchjob_fold() AS n_fold \gset
	SELECT public.batchjob_fold(:p) AS n_fold_p \gset
	SELECT pg_catalog.count(*) AS n_verify FROM public.batchjob_verify() \gset
	SELECT status AS st_view, percent_done AS pct_view, children AS children_view
	  FROM public.batch_job_progress WHERE job_id OPERATOR(pg_catalog.=) :p \gset
	SELECT public.batchjob_grant(:'wrole', 'worker');
	SELECT public.batchjob_revoke(:'wrole');
	SELECT public.batchjob_grant(:'wrole', 'worker');
	\if :{?pre}
	SELECT pg_catalog.count(*) AS n_temp FROM pg_temp.batch_jobs \gset
	\else
	\set n_temp 0
	\endif
	\echo p=:p
	\echo q=:q
	\echo s=:s
	\echo calls=:n_split,:n_split_s,:n_children,:n_counts,:next_is_c1,:n_claim1,:hb,:c1_processed,:st_c1,:st_c2,:st_c3,:st_c3r,:n_claim2,:n_done,:n_failed,:st_g1,:hb3,:n_reaped,:n_cancelled,:n_split_q,:st_q_reopened,:n_split_t,:st_refresh,:n_fold_p,:n_verify,:st_view,:pct_view,:children_view,:n_temp
SQL
CALLS="5,2,7,7,t,3,t,10,COMPLETED,PENDING,FAILED,PENDING,6,2,1,FAILED,t,1,2,2,PROCESSING,1,COMPLETED,1,0,COMPLETED,13.33,7,0"

# the parent of an exercise as a clean session sees it
P_SQL="SELECT 'p=' || concat_ws(',', status, error_details, child_pending, child_processing,
               child_completed, child_failed, child_cancelled, total_records,
               processed_records, success_count, error_count)
         FROM public.batch_jobs WHERE job_id = %s
       UNION ALL
       SELECT 's=' || string_agg(status, ',' ORDER BY job_id) FROM public.batch_jobs
        WHERE job_id = %s OR parent_job_id = %s
       UNION ALL
       SELECT 'q=' || concat_ws(',', status, processed_records, total_records)
         FROM public.batch_jobs WHERE job_id = %s"
P_WANT="p=COMPLETED,2 out of 7 batch jobs failed,0,0,3,2,2,75,10,9,1 s=FAILED,FAILED,CANCELLED q=COMPLETED,20,20"

# exercise NAME DB PATH [PRE]: runs exercise.sql and checks what it returned
exercise() {
	local name=$1 db=$2 path=$3 pre=${4:-} p s q
	step "$name" "$db" "$path" <<-SQL
		\set tag $name
		\set w w-$name
		\set wrole $WROLE
		$( [ -n "$pre" ] && echo "\\set pre $pre" )
		\i $work/exercise.sql
	SQL
	is "$(rc "$name")" 0 "$name: every function and trigger path ran without error" "$(why "$name")"
	is "$(get "$name" calls)" "$CALLS" "$name: each call returned what it should"
	p=$(get "$name" p) s=$(get "$name" s) q=$(get "$name" q)
	# shellcheck disable=SC2059
	is "$(clean "$db" "$(printf "$P_SQL" "${p:-0}" "${s:-0}" "${s:-0}" "${q:-0}")" | tr '\n' ' ' | sed 's/ $//')" \
		"$P_WANT" "$name: the parents rolled up exactly (seen from a clean session)"
}

# defer NAME DB PATH: a difference deferred by two sessions and folded by
# the folder background worker
defer() {
	local name=$1 db=$2 path=$3 d d1 d2 waiting=x deferred
	d=$(clean "$db" "UPDATE public.batch_jobs SET run_at = 'infinity' WHERE status = 'PENDING' AND NOT is_parent;
	                 SELECT job_id FROM public.batchjob_create_parent('{}', 'defer-$name')")
	d=${d##*$'\n'}
	clean "$db" "SELECT count(*) FROM public.batchjob_split($d, 20, 10);
	             UPDATE public.batch_jobs SET run_at = now() - interval '1 second' WHERE parent_job_id = $d;
	             SELECT count(*) FROM public.batchjob_claim('wd', 2)" >/dev/null
	d1=$(clean "$db" "SELECT job_id FROM public.batch_jobs WHERE parent_job_id = $d AND batch_number = 1")
	d2=$(clean "$db" "SELECT job_id FROM public.batch_jobs WHERE parent_job_id = $d AND batch_number = 2")
	step "$name-a" "$db" "$path" <<-SQL &
		BEGIN;
		SELECT status FROM public.batchjob_complete(${d1:-0}, 'wd');
		SELECT pg_catalog.pg_sleep(3);
		COMMIT;
	SQL
	sleep 1
	step "$name-b" "$db" "$path" <<-SQL
		SELECT status FROM public.batchjob_complete(${d2:-0}, 'wd');
	SQL
	deferred=$(clean "$db" "SELECT count(*) FROM public.batch_job_deltas WHERE parent_job_id = $d")
	wait
	for _ in $(seq 1 40); do
		waiting=$(clean "$db" "SELECT count(*) FROM public.batch_job_deltas WHERE parent_job_id = $d")
		[ "$waiting" = 0 ] && break
		sleep 0.5
	done
	is "$(rc "$name-a"),$(rc "$name-b"),$deferred" "0,0,1" \
		"$name: the second of two sessions completing children of one parent deferred its difference" \
		"$(why "$name-a"; why "$name-b")"
	is "$waiting,$(clean "$db" "SELECT concat_ws(',', status, child_completed) FROM public.batch_jobs WHERE job_id = $d")" \
		"0,COMPLETED,2" "$name: the folder folded it into the parent"
}

# nothing NAME DB [FILES...]: no trap ran (log empty, no WARNING)
nothing() {
	local name=$1 db=$2 log warned
	shift 2
	log=$(clean "$db" "SELECT string_agg(DISTINCT what || ' as ' || who, '; ') FROM hlog.log")
	warned=$(cat "$@" /dev/null 2>/dev/null | grep -c 'HOSTILE CODE RAN' || true)
	is "${log}|${warned}" "|0" "$name: no hostile code ran" \
		"$(cat "$@" /dev/null 2>/dev/null | grep 'HOSTILE CODE RAN' | sort | uniq -c | head -20)"
	clean "$db" "DELETE FROM hlog.log" >/dev/null
}

# ---- A-F: one database, traps in public and in schema hostile ----

step log "$DB" <"$work/log.sql"
q -d "$DB" -c "GRANT CREATE ON SCHEMA public TO \"$HROLE\"" >/dev/null 2>&1
step traps_public "$DB" <<-SQL
	\set s public
	\i $work/traps.sql
SQL
is "$(rc log),$(rc traps_public),$(get traps_public traps),$(get traps_public operators)" \
	"0,0,57,35" "A: the hostile role planted 18 functions, 35 operators, sum and count in public" \
	"$(why log; why traps_public)"
step install "$DB" <<-'SQL'
	CREATE EXTENSION batchjob;
	SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'batchjob';
SQL
is "$(rc install),$(get install version)" "0,1.2" "A: CREATE EXTENSION batchjob succeeds next to the traps" "$(why install)"
nothing "A: during CREATE EXTENSION" "$DB" "$work/install.err"

exercise A "$DB" ""
defer A "$DB" ""
nothing A "$DB" "$work/A.err" "$work/A-a.err" "$work/A-b.err"

exercise B "$DB" "public,pg_catalog"
nothing B "$DB" "$work/B.err"

step hostile_schema "$DB" <<-SQL
	SET ROLE "$HROLE";
	CREATE SCHEMA hostile;
	GRANT USAGE ON SCHEMA hostile TO PUBLIC;
	RESET ROLE;
	\set s hostile
	\i $work/traps.sql
	\i $work/lookalikes.sql
SQL
is "$(rc hostile_schema),$(get hostile_schema traps),$(get hostile_schema operators)" "0,58,35" \
	"C: the hostile role planted the same traps and look-alike tables in schema hostile" \
	"$(why hostile_schema)"

exercise C "$DB" "hostile,public"
nothing C "$DB" "$work/C.err"

exercise D "$DB" "hostile,pg_catalog,public"
defer D "$DB" "hostile,pg_catalog,public"
nothing D "$DB" "$work/D.err" "$work/D-a.err" "$work/D-b.err"

exercise E "$DB" "pg_temp,hostile,pg_catalog,public" "$work/pretemp.sql"
nothing E "$DB" "$work/E.err"

# F: the worker functions called by a worker role, hostile schema first
k=$(clean "$DB" "UPDATE public.batch_jobs SET run_at = 'infinity' WHERE status = 'PENDING' AND NOT is_parent;
                 SELECT job_id FROM public.batchjob_create_parent('{}', 'F')")
k=${k##*$'\n'}
clean "$DB" "SELECT count(*) FROM public.batchjob_split($k, 20, 10)" >/dev/null
step F "$DB" "hostile,pg_catalog,public" <<-SQL
	SET ROLE "$WROLE";
	SELECT 'read=' OPERATOR(pg_catalog.||) pg_catalog.count(*) FROM public.batchjob_children($k);
	SELECT 'counts=' OPERATOR(pg_catalog.||) total FROM public.batchjob_child_counts($k);
	SELECT job_id AS k1 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) $k AND batch_number OPERATOR(pg_catalog.=) 1 \gset
	SELECT job_id AS k2 FROM public.batch_jobs WHERE parent_job_id OPERATOR(pg_catalog.=) $k AND batch_number OPERATOR(pg_catalog.=) 2 \gset
	SELECT 'claimed=' OPERATOR(pg_catalog.||) pg_catalog.count(*) FROM public.batchjob_claim('wf', 2);
	SELECT 'heartbeat=' OPERATOR(pg_catalog.||) public.batchjob_heartbeat(:k1, 'wf');
	SELECT 'progress=' OPERATOR(pg_catalog.||) processed_records FROM public.batchjob_progress(:k1, 10, 10, 0, 'wf');
	SELECT 'complete=' OPERATOR(pg_catalog.||) status FROM public.batchjob_complete(:k1, 'wf');
	SELECT 'fail=' OPERATOR(pg_catalog.||) status FROM public.batchjob_fail(:k2, 'again', true, 'wf');
	SELECT 'view=' OPERATOR(pg_catalog.||) status FROM public.batch_job_progress WHERE job_id OPERATOR(pg_catalog.=) $k;
SQL
is "$(rc F),$(get F read),$(get F counts),$(get F claimed),$(get F heartbeat),$(get F progress),$(get F complete),$(get F fail),$(get F view)" \
	"0,2,2,2,true,10,COMPLETED,PENDING,PROCESSING" \
	"F: a worker role reads, claims, heartbeats, reports, completes and fails (with backoff)" "$(why F)"
is "$(clean "$DB" "SELECT concat_ws(',', status, child_pending, child_completed, processed_records) FROM public.batch_jobs WHERE job_id = $k")" \
	"PROCESSING,1,1,10" "F: the worker's changes rolled up"
nothing F "$DB" "$work/F.err"

is "$(clean "$DB" "SELECT count(*) FROM public.batchjob_verify()")" 0 "A-F: batchjob_verify finds nothing wrong"
is "$(clean "$DB" "SELECT (SELECT count(*) FROM hostile.batch_jobs) + (SELECT count(*) FROM hostile.batch_job_deltas)
                          + (SELECT count(*) FROM hostile.batch_job_workers)")" 0 \
	"C-F: the look-alike tables in schema hostile were never written"

# I: no member of the extension, and nothing they are built from, belongs
# to the hostile role
DEPS_SQL="WITH RECURSIVE ext AS (
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
    OR (u.refclassid = 'pg_namespace'::regclass AND (SELECT nspowner FROM pg_namespace WHERE oid = u.refobjid) = '$HROLE'::regrole::oid)"
is "$(clean "$DB" "$DEPS_SQL")" "0 " \
	"I: no object of the extension (nor its view, policy, triggers, defaults, constraints) uses an object of the hostile role"

# ---- K: an admin's own trigger must not run as the extension's owner ----

clean "$DB" "SELECT public.batchjob_grant('$AROLE', 'admin')" >/dev/null
step K "$DB" <<-SQL
	SET ROLE "$AROLE";
	CREATE FUNCTION pg_temp.bjt_admin_trigger() RETURNS trigger LANGUAGE plpgsql
	    AS \$\$BEGIN PERFORM hlog.note('admin trigger'); RETURN NULL; END\$\$;
	\set ON_ERROR_STOP 0
	CREATE TRIGGER bjt_admin_trigger AFTER INSERT OR UPDATE ON public.batch_jobs
	    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.bjt_admin_trigger();
	\set ON_ERROR_STOP 1
	SELECT 'created=' || pg_catalog.count(*) FROM public.batchjob_create_parent('{}', 'K');
	RESET ROLE;
	DROP TRIGGER IF EXISTS bjt_admin_trigger ON public.batch_jobs;
SQL
is "$(rc K),$(get K created)" "0,1" "K: the admin creates a parent through batchjob_create_parent" "$(why K)"
is "$(clean "$DB" "SELECT coalesce(string_agg(DISTINCT who || '/' || super, ','), '') FROM hlog.log WHERE what = 'admin trigger' AND super")" "" \
	"K: no trigger an admin created ever ran as a superuser (admin must not hold TRIGGER on batch_jobs)" \
	"$(why K | grep -v '^NOTICE' | head -5)"

# ---- G: the upgrade path ----

step up10 "$UPDB" <<-'SQL'
	CREATE EXTENSION batchjob VERSION '1.0';
	CREATE TEMP TABLE p AS SELECT (batchjob_create_parent('{}', 'up', 0)).job_id AS p;
	SELECT count(*) FROM p, batchjob_split(p, 40, 10);
	UPDATE batch_jobs SET status = 'PROCESSING' WHERE parent_job_id = (SELECT p FROM p) AND batch_number = 1;
	UPDATE batch_jobs SET status = 'COMPLETED', processed_records = 10, success_count = 10
	 WHERE parent_job_id = (SELECT p FROM p) AND batch_number = 2;
	SELECT 'p=' || p FROM p;
SQL
UP=$(get up10 p)
step up_traps "$UPDB" <<-SQL
	\i $work/log.sql
	GRANT CREATE ON SCHEMA public TO "$HROLE";
	\set s public
	\i $work/traps.sql
	SET ROLE "$HROLE";
	CREATE SCHEMA hostile;
	GRANT USAGE ON SCHEMA hostile TO PUBLIC;
	RESET ROLE;
	\set s hostile
	\i $work/traps.sql
	\i $work/lookalikes.sql
SQL
is "$(rc up10),$(rc up_traps),$(get up_traps traps)" "0,0,57" \
	"G: batchjob 1.0 installed and filled; traps planted in public and schema hostile" "$(why up10; why up_traps)"
step up "$UPDB" "hostile,public" <<-'SQL'
	ALTER EXTENSION batchjob UPDATE;
	SELECT 'version=' OPERATOR(pg_catalog.||) extversion FROM pg_catalog.pg_extension
	 WHERE extname OPERATOR(pg_catalog.=) 'batchjob';
SQL
is "$(rc up),$(get up version)" "0,1.2" "G: ALTER EXTENSION batchjob UPDATE succeeds next to the traps" "$(why up)"
is "$(clean "$UPDB" "SELECT concat_ws(',', status, child_processing, child_completed, processed_records,
                                      (SELECT count(*) FROM public.batch_jobs c WHERE c.parent_job_id = p.job_id
                                          AND c.status = 'PROCESSING' AND c.locked_until IS NOT NULL))
                       FROM public.batch_jobs p WHERE job_id = ${UP:-0}")" \
	"PROCESSING,1,1,10,1" "G: the 1.0 rows came through; the PROCESSING child got its lease"
nothing "G: during the upgrade" "$UPDB" "$work/up.err"
exercise G "$UPDB" "hostile,pg_catalog,public"
nothing G "$UPDB" "$work/G.err"
is "$(clean "$UPDB" "SELECT count(*) FROM public.batchjob_verify()")" 0 "G: batchjob_verify finds nothing wrong"
is "$(clean "$UPDB" "$DEPS_SQL")" "0 " "G: no object of the upgraded extension uses an object of the hostile role"

# ---- H: look-alikes of batchjob's own objects are never adopted ----

step adopt1 "$ADB" <<-SQL
	GRANT CREATE ON SCHEMA public TO "$HROLE";
	SET ROLE "$HROLE";
	CREATE TABLE public.batch_jobs (job_id bigint, status text);
	GRANT ALL ON public.batch_jobs TO PUBLIC;
	RESET ROLE;
	\set ON_ERROR_STOP 0
	CREATE EXTENSION batchjob;
	\set ON_ERROR_STOP 1
	SELECT 'installed=' || count(*) FROM pg_extension WHERE extname = 'batchjob';
	SELECT 'owner=' || relowner::regrole FROM pg_class WHERE oid = 'public.batch_jobs'::regclass;
SQL
is "$(grep -c 'ERROR:  42P07' "$work/adopt1.err"),$(get adopt1 installed),$(get adopt1 owner)" "1,0,$HROLE" \
	"H: a look-alike batch_jobs table makes CREATE EXTENSION fail (42P07); the table is not adopted" "$(why adopt1)"
step adopt2 "$ADB" <<-SQL
	SET ROLE "$HROLE";
	DROP TABLE public.batch_jobs;
	CREATE FUNCTION public.batchjob_claim(worker text, max_jobs integer DEFAULT 1,
	                                      lease interval DEFAULT '5 minutes')
	    RETURNS SETOF record LANGUAGE sql AS 'SELECT NULL::record WHERE false';
	RESET ROLE;
	\set ON_ERROR_STOP 0
	CREATE EXTENSION batchjob;
	\set ON_ERROR_STOP 1
	SELECT 'installed=' || count(*) FROM pg_extension WHERE extname = 'batchjob';
SQL
is "$(grep -c 'ERROR:  42723' "$work/adopt2.err"),$(get adopt2 installed)" "1,0" \
	"H: a look-alike batchjob_claim makes CREATE EXTENSION fail (42723)" "$(why adopt2)"
step adopt3 "$ADB" <<-'SQL'
	CREATE EXTENSION batchjob VERSION '1.0';
	\set ON_ERROR_STOP 0
	ALTER EXTENSION batchjob UPDATE;
	\set ON_ERROR_STOP 1
	SELECT 'version=' || extversion FROM pg_extension WHERE extname = 'batchjob';
	SELECT 'member=' || count(*) FROM pg_depend
	 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	   AND objid = 'public.batchjob_claim(text, integer, interval)'::regprocedure;
SQL
is "$(grep -c 'ERROR:  42723' "$work/adopt3.err"),$(get adopt3 version),$(get adopt3 member)" "1,1.0,0" \
	"H: ... and makes ALTER EXTENSION UPDATE fail; the extension stays 1.0 and does not adopt it" "$(why adopt3)"

# ---- J: the folder, in a database whose owner is hostile ----

step owned "$ODB" <<-SQL
	CREATE EXTENSION batchjob;
	\i $work/log.sql
	SET ROLE "$HROLE";
	CREATE SCHEMA hostile;
	GRANT USAGE ON SCHEMA hostile TO PUBLIC;
	RESET ROLE;
	\set s hostile
	\i $work/traps.sql
	SET ROLE "$HROLE";
	ALTER DATABASE "$ODB" SET search_path = hostile, pg_catalog, public;
	RESET ROLE;
SQL
is "$(rc owned),$(get owned traps)" "0,58" \
	"J: the database's owner (not a superuser) planted traps and put them first on the database's search_path" \
	"$(why owned)"
defer J "$ODB" "public"
nothing J "$ODB" "$work/J-a.err" "$work/J-b.err"
is "$(clean "$ODB" "SELECT count(*) FROM public.batchjob_verify()")" 0 "J: batchjob_verify finds nothing wrong"

if [ "$n" -ne "$PLAN" ]; then
	echo "# planned $PLAN tests but ran $n"
	failed=$((failed + 1))
fi
[ "$failed" -eq 0 ]
