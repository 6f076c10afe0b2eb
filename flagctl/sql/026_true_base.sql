-- flagctl schema, version 26: a kill records the base it really replaced.
--
-- `engaged_switch.prior` (and, for a global kill, each covered override's `below.prior`) is
-- what `release` restores. Until now the database took the kill's word for it: a security
-- member could declare a kill in psql, INSERT an engagement whose prior said 100%, and
-- release it — the flag went to 100%, past any freeze or approval, and the guard allowed it
-- as "no wider than the recorded base".
--
-- Now the engagement's guard checks every recorded base against the truth: the value the
-- flag had at that scope before this transaction wrote it (the before-image of its audit
-- row in this transaction; a kill's writes only ever narrow, so no in-transaction image is
-- wider than the original), or, where this transaction did not write it, the value stored
-- now; or the base another engaged kill already recorded for it (strictest wins: a second
-- kill keeps the first one's base). Anything else is refused.

-- The functions (their bodies in routines/40_guard.sql, which db init applies after the
-- migrations, in the same transaction): stubs here, so the grants below have them to name.
CREATE FUNCTION flagctl.value_before(p_system text, p_flag text, p_scope text) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'flagctl: defined by the routines (flagctl db init)'; END $$;
CREATE FUNCTION flagctl.true_base(p_system text, p_switch text, p_flag text, p_scope text, p_base jsonb)
RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'flagctl: defined by the routines (flagctl db init)'; END $$;
CREATE FUNCTION flagctl.check_bases(e flagctl.engaged_switch, p_old_below jsonb) RETURNS void
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'flagctl: defined by the routines (flagctl db init)'; END $$;
-- guard_engaged_write's new body (checking every base a kill records) is in the routines too.

REVOKE ALL ON FUNCTION flagctl.value_before(text, text, text),
    flagctl.true_base(text, text, text, text, jsonb),
    flagctl.check_bases(flagctl.engaged_switch, jsonb) FROM PUBLIC;
