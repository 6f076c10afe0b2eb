-- WS8 Phase 3 control surface, exactly as the seed defines it (§2, §5 Stage 0).
-- p3_feature_state is the single source of truth; flagctl binds to it and keeps no copy.
CREATE TABLE IF NOT EXISTS p3_feature_state (
    feature_name    text PRIMARY KEY,
    enabled         boolean NOT NULL DEFAULT false,
    rollout_percent integer NOT NULL DEFAULT 0 CHECK (rollout_percent BETWEEN 0 AND 100)
);

-- Stage 0 (dark launch) is the required initial state.
INSERT INTO p3_feature_state (feature_name, enabled, rollout_percent)
VALUES ('p3_advisory', false, 0)
ON CONFLICT (feature_name) DO NOTHING;

-- Phase 3's own tables (written only by the phase) and the events its guardrails read.
CREATE TABLE IF NOT EXISTS p3_advisories (
    id         bigserial PRIMARY KEY,
    resume_id  text NOT NULL,
    advice     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS p3_events (
    id   bigserial PRIMARY KEY,
    kind text NOT NULL,
    at   timestamptz NOT NULL DEFAULT now()
);

-- A Phase 1/2 table, which Phase 3 must never write (isolation proof).
CREATE TABLE IF NOT EXISTS resumes (
    id         text PRIMARY KEY,
    body       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
