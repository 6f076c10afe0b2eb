-- flagctl schema, version 13: drills, recorded.
--
-- `flagctl drill kill|rollback` engages a kill switch (or steps a ladder back), proves the
-- effect, restores the state exactly and records here who ran it, when, every step with its
-- timings (command start → change committed → effect proved), the verdict and the Markdown
-- report. A drill still `running` was cut off (the process killed): check the state.
CREATE TABLE flagctl.drills (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system      text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('kill', 'rollback')),
    subject     text        NOT NULL,          -- the switch or the ladder
    scope       text        NOT NULL DEFAULT 'global',
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    db_user     text        NOT NULL DEFAULT session_user,
    actor       text,
    reason      text        NOT NULL,
    verdict     text        NOT NULL DEFAULT 'running'
                CHECK (verdict IN ('running', 'passed', 'failed', 'interrupted')),
    steps       jsonb       NOT NULL DEFAULT '[]',
    restored    boolean,                       -- the state was found exactly as before
    report      text
);
CREATE INDEX drills_by_system ON flagctl.drills (system, id DESC);

REVOKE ALL ON flagctl.drills FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT SELECT, INSERT, UPDATE ON flagctl.drills TO flagctl_operator;
    END IF;
END
$$;
