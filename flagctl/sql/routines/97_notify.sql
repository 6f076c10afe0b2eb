-- Notifications (schema 32, docs/notifications.md): how far each sink of a system has been
-- delivered, and every attempt. flagctl's roles hold no INSERT, UPDATE or DELETE on
-- flagctl.notify_cursor or flagctl.notify_delivery; the deliverer writes them through these
-- functions, which run as flagctl's owner, only inside a change declared as notify.* (any
-- writing role may declare one: flagctl.may), taking who acts from that declaration.
--
-- The order is the seal's (flagctl.audit_seal.pos): a row with a lower seq may commit after
-- one with a higher seq, but the sealer seals committed rows only, each once, one sealer at
-- a time, so a seal position is never seen before the ones below it. A cursor over the seal
-- never skips a row; a cursor over seq could.

-- The sink's cursor (created at p_pos, no further than the sealed head, when it has none):
-- where its delivery stands.
CREATE OR REPLACE FUNCTION flagctl.notify_start(p_system text, p_sink text, p_pos bigint) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    found_pos bigint;
BEGIN
    PERFORM flagctl.record_declared('a notification cursor', ARRAY['notify.']);
    INSERT INTO flagctl.notify_cursor (system, sink, pos)
    VALUES (p_system, p_sink,
            least(greatest(coalesce(p_pos, 0), 0), coalesce((SELECT max(s.pos) FROM flagctl.audit_seal s), 0)))
        ON CONFLICT (system, sink) DO NOTHING;
    SELECT c.pos INTO found_pos FROM flagctl.notify_cursor c WHERE c.system = p_system AND c.sink = p_sink;
    RETURN found_pos;
END
$$;

-- One attempt at audit row p_seq, sealed after p_from and at most at p_to (a Slack message
-- tells of the rows of one change at once: p_to is its last), or (p_seq NULL) the rows up
-- to p_to passed over as not the sink's. A delivered row, or rows passed over, move the
-- cursor from p_from to p_to; a failed attempt only adds to the log and the cursor stays
-- (at least once, in order). Refused when the cursor is no longer at p_from (another
-- deliverer moved it), when p_to is not a seal ahead of it, or when p_seq is not a row of
-- this system sealed between them.
CREATE OR REPLACE FUNCTION flagctl.notify_record(p_system text, p_sink text, p_from bigint, p_to bigint,
                                                 p_seq bigint, p_event_id text, p_attempt integer,
                                                 p_outcome text, p_status integer, p_error text,
                                                 p_next timestamptz) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a notification delivery', ARRAY['notify.']);
    row_pos bigint;
BEGIN
    PERFORM 1 FROM flagctl.notify_cursor c
      WHERE c.system = p_system AND c.sink = p_sink AND c.pos = p_from
      FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: the cursor of sink % of % is not at %: another deliverer moved it', p_sink,
            p_system, p_from
            USING ERRCODE = 'lock_not_available';
    END IF;
    IF p_to IS NULL OR p_to <= p_from OR NOT EXISTS (SELECT 1 FROM flagctl.audit_seal s WHERE s.pos = p_to) THEN
        RAISE EXCEPTION 'flagctl: % is not a seal position after %', p_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_seq IS NOT NULL THEN
        SELECT s.pos INTO row_pos
          FROM flagctl.audit_seal s JOIN flagctl.audit a ON a.seq = s.seq
         WHERE s.seq = p_seq AND a.system = p_system AND s.pos > p_from AND s.pos <= p_to;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'flagctl: audit row % of % is not sealed after % and by %', p_seq, p_system, p_from,
                p_to
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p_outcome IS NULL OR p_outcome NOT IN ('delivered', 'failed') OR p_attempt IS NULL OR p_attempt < 1
           OR p_event_id IS NULL THEN
            RAISE EXCEPTION 'flagctl: an attempt has an event id, a number from 1, and is delivered or failed'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO flagctl.notify_delivery (system, sink, audit_seq, pos, event_id, attempt, outcome,
                                             http_status, error, next_attempt_at, actor)
        VALUES (p_system, p_sink, p_seq, row_pos, p_event_id, p_attempt, p_outcome, p_status, left(p_error, 2000),
                CASE WHEN p_outcome = 'failed' THEN p_next END, ctx.actor);
        IF p_outcome = 'failed' THEN
            RETURN;
        END IF;
    END IF;
    UPDATE flagctl.notify_cursor SET pos = p_to, updated_at = now()
     WHERE system = p_system AND sink = p_sink;
END
$$;

REVOKE ALL ON FUNCTION flagctl.notify_start(text, text, bigint),
    flagctl.notify_record(text, text, bigint, bigint, bigint, text, integer, text, integer, text, timestamptz)
    FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION flagctl.notify_start(text, text, bigint),
                flagctl.notify_record(text, text, bigint, bigint, bigint, text, integer, text, integer, text,
                                      timestamptz) TO %I', r);
        END IF;
    END LOOP;
END
$$;
