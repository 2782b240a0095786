-- test/t/upgrade_shape.sql - what an installed batchjob is made of: its
-- objects, columns, constraints, indexes, triggers, functions, privileges
-- and comments, one line each, sorted; compared between an upgraded and a
-- fresh install by test/t/011_upgrade_1_2.pl and
-- test/t/013_upgrade_1_0_1_1.pl.
SELECT 'object ' || pg_describe_object(classid, objid, 0)
  FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'batchjob')
UNION ALL
SELECT format('column %s.%s %s notnull=%s default %s', c.relname, a.attname,
              format_type(a.atttypid, a.atttypmod), a.attnotnull,
              pg_get_expr(d.adbin, d.adrelid))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'public'::regnamespace AND c.relname LIKE 'batch%'
   AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid))
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index i
  JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT format('function %s(%s) returns %s volatile=%s secdef=%s strict=%s config=%s acl=%s comment=%s',
              p.proname, pg_get_function_arguments(p.oid),
              pg_get_function_result(p.oid), p.provolatile, p.prosecdef,
              p.proisstrict, p.proconfig, p.proacl,
              obj_description(p.oid, 'pg_proc') IS NOT NULL)
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT format('relation %s kind=%s acl=%s comment=%s', relname, relkind, relacl,
              obj_description(oid, 'pg_class') IS NOT NULL)
  FROM pg_class WHERE relnamespace = 'public'::regnamespace
UNION ALL
SELECT format('column comment %s.%s %s', c.relname, a.attname,
              col_description(c.oid, a.attnum) IS NOT NULL)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
   AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'
UNION ALL
SELECT 'config ' || pg_describe_object('pg_class'::regclass, x.oid, 0)
       || ' ' || coalesce(x.cond, '')
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(oid, cond)
 WHERE e.extname = 'batchjob'
ORDER BY 1;
