-- The recommender's event tables (its query templates' events.ranking / events.error),
-- for the guardrails below; `flagctl demo` and the tests fill them with synthetic traffic.
CREATE TABLE IF NOT EXISTS ranking_events (
    id          bigserial   PRIMARY KEY,
    event_time  timestamptz NOT NULL DEFAULT now(),
    request_id  text        NOT NULL,
    bucket      integer     NOT NULL,
    cohort      text        NOT NULL DEFAULT 'all',
    k           integer     NOT NULL DEFAULT 10,
    k_returned  integer     NOT NULL,
    coverage    numeric     NOT NULL,
    latency_ms  integer     NOT NULL,
    cache_hit   boolean     NOT NULL DEFAULT true,
    shadow      boolean     NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS ranking_events_time_idx ON ranking_events (event_time);

CREATE TABLE IF NOT EXISTS error_events (
    id          bigserial   PRIMARY KEY,
    event_time  timestamptz NOT NULL DEFAULT now(),
    request_id  text        NOT NULL,
    component   text        NOT NULL,
    severity    text        NOT NULL
);
CREATE INDEX IF NOT EXISTS error_events_time_idx ON error_events (event_time);
