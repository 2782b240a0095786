-- test/t/hostile/log.sql - run as a superuser, psql variable hrole: the
-- log every trap writes to (a row, and a WARNING "HOSTILE CODE RAN"),
-- owned by the hostile role.
SET ROLE :"hrole";
CREATE SCHEMA hlog;
GRANT USAGE ON SCHEMA hlog TO PUBLIC;
CREATE TABLE hlog.log (at timestamptz DEFAULT pg_catalog.clock_timestamp(),
                       who name, super boolean, what text);
GRANT INSERT ON hlog.log TO PUBLIC;
CREATE FUNCTION hlog.note(what text) RETURNS void LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$BEGIN
    INSERT INTO hlog.log (who, super, what)
        SELECT current_user, r.rolsuper, what FROM pg_catalog.pg_roles r
         WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    RAISE WARNING 'HOSTILE CODE RAN: % as %', what, current_user;
END$$;
CREATE FUNCTION hlog.note_trigger() RETURNS trigger LANGUAGE plpgsql
AS $$BEGIN
    PERFORM hlog.note('trigger on ' OPERATOR(pg_catalog.||) TG_TABLE_SCHEMA
                      OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) TG_TABLE_NAME);
    RETURN NULL;
END$$;
RESET ROLE;
