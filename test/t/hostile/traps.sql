-- test/t/hostile/traps.sql - run as a superuser with psql variables hrole
-- and s: the hostile role plants look-alike functions, operators and
-- aggregates in schema s, each of which logs that it ran (log.sql).
-- Prints traps=N and operators=N.
SET ROLE :"hrole";
SELECT pg_catalog.set_config('bjt.schema', :'s', false);
DO $do$
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
         'pg_catalog.power($1::pg_catalog.float8, $2)'),
        ('power', 'double precision, double precision', 'double precision',
         'pg_catalog.power($1, $2)'),
        ('power', 'numeric, numeric', 'numeric', 'pg_catalog.power($1, $2)'),
        ('make_interval', 'secs double precision', 'interval',
         'pg_catalog.make_interval(secs => $1)'),
        ('make_interval', 'secs numeric', 'interval',
         'pg_catalog.make_interval(secs => $1::pg_catalog.float8)'),
        ('format', 'text, text, integer, integer', 'text',
         'pg_catalog.format($1, $2, $3, $4)'),
        ('format', 'text, text', 'text', 'pg_catalog.format($1, $2)'),
        ('format', 'text, text, text', 'text', 'pg_catalog.format($1, $2, $3)'),
        ('date_part', 'text, interval', 'double precision', 'pg_catalog.date_part($1, $2)'),
        ('round', 'numeric, integer', 'numeric', 'pg_catalog.round($1, $2)'),
        ('cardinality', 'text[]', 'integer', 'pg_catalog.cardinality($1)'),
        ('jsonb_build_object', 'text, bigint, text, text', 'jsonb',
         'pg_catalog.jsonb_build_object($1, $2, $3, $4)'),
        ('batchjob_tenant_visible', 'text', 'boolean', 'true'),
        ('current_setting', 'text', 'text', 'pg_catalog.current_setting($1)')
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
                          ' RETURN QUERY SELECT pg_catalog.generate_series($1, $2); END',
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
                              ' RETURN $1%s OPERATOR(pg_catalog.%s) $2; END',
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
            ' RETURN COALESCE($1, 0) OPERATOR(pg_catalog.+) $2; END',
            s OPERATOR(pg_catalog.||) '.sum(bigint)'));
    EXECUTE pg_catalog.format(
        'CREATE AGGREGATE %I.sum(bigint) (SFUNC = %I.trap_sum, STYPE = numeric)', s, s);
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION %I.trap_count(bigint) RETURNS bigint LANGUAGE plpgsql'
        ' AS %L', s, pg_catalog.format(
            'BEGIN PERFORM hlog.note(%L); RETURN $1 OPERATOR(pg_catalog.+) 1; END',
            s OPERATOR(pg_catalog.||) '.count(*)'));
    EXECUTE pg_catalog.format(
        'CREATE AGGREGATE %I.count(*) (SFUNC = %I.trap_count, STYPE = bigint, INITCOND = 0)',
        s, s);
END
$do$;
SELECT 'traps=' || pg_catalog.count(*) FROM pg_catalog.pg_proc
 WHERE pronamespace OPERATOR(pg_catalog.=) :'s'::regnamespace
   AND proowner OPERATOR(pg_catalog.=) :'hrole'::regrole::oid;
SELECT 'operators=' || pg_catalog.count(*) FROM pg_catalog.pg_operator
 WHERE oprnamespace OPERATOR(pg_catalog.=) :'s'::regnamespace
   AND oprowner OPERATOR(pg_catalog.=) :'hrole'::regrole::oid;
RESET ROLE;
