-- flagctl schema, version 32: notifications (docs/notifications.md).
--
-- Every audited change is delivered to the sinks a manifest declares (`notifications:`):
-- the outbox is flagctl.audit itself, written by the triggers in the change's own
-- transaction, so a kill sends nothing more. The deliverer (`flagctl notify deliver`) reads
-- the trail in seal order (flagctl.audit_seal.pos: committed rows, each once, in the order
-- they committed) and keeps, per system and sink, how far it has delivered and every
-- attempt. Both tables are written only by the SECURITY DEFINER functions of
-- routines/97_notify.sql, inside a change declared as notify.*; flagctl's roles read them.
-- Neither table is audited: a delivery is not a change of a controlled value (and an
-- audited delivery would be delivered in turn).
CREATE TABLE flagctl.notify_cursor (
    system     text        NOT NULL,
    sink       text        NOT NULL,
    pos        bigint      NOT NULL CHECK (pos >= 0),  -- the last seal position handled
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, sink)
);

CREATE TABLE flagctl.notify_delivery (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system          text        NOT NULL,
    sink            text        NOT NULL,
    audit_seq       bigint      NOT NULL,
    pos             bigint      NOT NULL,
    event_id        text        NOT NULL,
    attempt         integer     NOT NULL CHECK (attempt >= 1),
    outcome         text        NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    http_status     integer,
    error           text,
    at              timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz,
    db_user         text        NOT NULL DEFAULT session_user,
    actor           text
);
CREATE INDEX notify_delivery_by_sink ON flagctl.notify_delivery (system, sink, id DESC);
CREATE INDEX notify_delivery_by_row ON flagctl.notify_delivery (system, sink, audit_seq, id DESC);

REVOKE ALL ON flagctl.notify_cursor, flagctl.notify_delivery FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON flagctl.notify_cursor, flagctl.notify_delivery TO %I', r);
        END IF;
    END LOOP;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'grants on the notification tables not given (%)', SQLERRM;
END
$$;
