-- The canary plan's subjects: users (with the is_internal mark of its Phase 1) and the
-- publishers they belong to. Used by the ladder's blast-radius query.
CREATE TABLE IF NOT EXISTS publishers (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id           bigint  PRIMARY KEY,
    publisher_id integer NOT NULL REFERENCES publishers (id),
    is_internal  boolean NOT NULL DEFAULT false
);
INSERT INTO publishers (id, name) SELECT g, 'publisher ' || g FROM generate_series(1, 50) g
ON CONFLICT DO NOTHING;
INSERT INTO users (id, publisher_id, is_internal)
SELECT g, 1 + g % 50, g % 100 = 0 FROM generate_series(1, 10000) g
ON CONFLICT DO NOTHING;
