-- OpenVisit database roles. An operator runs this once per database, as a
-- superuser (or a role with CREATEROLE that owns the database), before the
-- first `openvisit migrate`:
--
--   psql "postgres://postgres@db.example/openvisit" -v ON_ERROR_STOP=1 -f internal/db/roles.sql
--   psql … -c "ALTER ROLE openvisit_owner PASSWORD '…'" -c "ALTER ROLE openvisit_app PASSWORD '…'"
--
-- Two roles:
--   openvisit_owner  owns the schema; `openvisit migrate` connects as it.
--                    Not a superuser: it cannot disable the audit triggers
--                    of tables it does not own, nor bypass them by
--                    session_replication_role.
--   openvisit_app    what `openvisit serve` connects as: ordinary DML on the
--                    application's tables, but only INSERT and SELECT on the
--                    audit tables (audit_events, audit_checkpoints) and only
--                    SELECT on audit_chain_head. Migration 0003 enforces the
--                    audit restriction again for every role but the owner,
--                    whatever default privileges granted.
--
-- The file is idempotent: run it again after migrations (for example after
-- adding tables by hand) and it re-applies the same grants.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'openvisit_owner') THEN
        CREATE ROLE openvisit_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'openvisit_app') THEN
        CREATE ROLE openvisit_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
END;
$$;

-- Only the two roles connect. No temporary tables for the application (they
-- could shadow tables in functions with an unpinned search_path).
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO openvisit_owner', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO openvisit_app', current_database());
END;
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO openvisit_owner;
GRANT USAGE ON SCHEMA public TO openvisit_app;

-- Tables and sequences the owner creates from now on (migrations).
ALTER DEFAULT PRIVILEGES FOR ROLE openvisit_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO openvisit_app;
ALTER DEFAULT PRIVILEGES FOR ROLE openvisit_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO openvisit_app;

-- Tables that exist already (when this runs after migrations).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO openvisit_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO openvisit_app;

-- The audit trail is append-only for the application.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_events', 'audit_checkpoints', 'audit_chain_head', 'schema_migrations'] LOOP
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %I FROM openvisit_app', t);
        END IF;
    END LOOP;
    IF to_regclass('audit_chain_head') IS NOT NULL THEN
        REVOKE INSERT ON audit_chain_head FROM openvisit_app;
    END IF;
    IF to_regclass('schema_migrations') IS NOT NULL THEN
        REVOKE INSERT ON schema_migrations FROM openvisit_app;
    END IF;
END;
$$;
