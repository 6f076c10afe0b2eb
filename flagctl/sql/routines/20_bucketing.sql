-- Deterministic bucketing, the same as Python's and Unleash's.
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md). Grants stay in the migrations.

-- murmur3_x86_32 in plain PL/pgSQL (no C extension, so it runs on managed PostgreSQL too).
-- 32-bit arithmetic is done in bigint; products are split in 16-bit halves so they never
-- overflow 63 bits.
CREATE OR REPLACE FUNCTION flagctl.murmur3_32(data bytea, seed bigint DEFAULT 0) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    c1  CONSTANT bigint := 3432918353;  -- 0xcc9e2d51
    c2  CONSTANT bigint := 461845907;   -- 0x1b873593
    m32 CONSTANT bigint := 4294967295;
    h   bigint := seed & m32;
    len integer := length(data);
    nblocks integer := len / 4;
    tail integer := (len / 4) * 4;
    k   bigint;
    i   integer;
BEGIN
    FOR i IN 0 .. nblocks - 1 LOOP
        k := get_byte(data, i * 4)::bigint
           | (get_byte(data, i * 4 + 1)::bigint << 8)
           | (get_byte(data, i * 4 + 2)::bigint << 16)
           | (get_byte(data, i * 4 + 3)::bigint << 24);
        k := (((k & 65535) * c1) + ((((k >> 16) * c1) & 65535) << 16)) & m32;
        k := ((k << 15) | (k >> 17)) & m32;
        k := (((k & 65535) * c2) + ((((k >> 16) * c2) & 65535) << 16)) & m32;
        h := h # k;
        h := ((h << 13) | (h >> 19)) & m32;
        h := (h * 5 + 3864292196) & m32;  -- 0xe6546b64
    END LOOP;
    k := 0;
    IF len & 3 >= 3 THEN k := k # (get_byte(data, tail + 2)::bigint << 16); END IF;
    IF len & 3 >= 2 THEN k := k # (get_byte(data, tail + 1)::bigint << 8); END IF;
    IF len & 3 >= 1 THEN
        k := k # get_byte(data, tail)::bigint;
        k := (((k & 65535) * c1) + ((((k >> 16) * c1) & 65535) << 16)) & m32;
        k := ((k << 15) | (k >> 17)) & m32;
        k := (((k & 65535) * c2) + ((((k >> 16) * c2) & 65535) << 16)) & m32;
        h := h # k;
    END IF;
    h := h # len;
    h := h # (h >> 16);
    h := (((h & 65535) * 2246822507) + ((((h >> 16) * 2246822507) & 65535) << 16)) & m32;  -- 0x85ebca6b
    h := h # (h >> 13);
    h := (((h & 65535) * 3266489909) + ((((h >> 16) * 3266489909) & 65535) << 16)) & m32;  -- 0xc2b2ae35
    h := h # (h >> 16);
    RETURN h;
END
$$;

-- bucket(salt, id) = murmur3_x86_32(utf8(salt || ':' || id), seed 0) % 100, the same as
-- flagctl.core.bucketing in Python and as Unleash's gradual rollout (normalizedValue =
-- bucket + 1).
CREATE OR REPLACE FUNCTION flagctl.bucket(salt text, id text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT (flagctl.murmur3_32(convert_to(salt || ':' || id, 'UTF8'), 0) % 100)::integer $$;

COMMENT ON FUNCTION flagctl.bucket(text, text) IS
    'hash_version 1: murmur3_x86_32(utf8(salt:id), seed 0) % 100; eligible iff enabled and bucket < percent';

-- The bucketing algorithm's version. It never changes silently: a new algorithm is a new
-- version, and flagctl refuses to evaluate a flag whose declared version differs.
CREATE OR REPLACE FUNCTION flagctl.hash_version() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1 $$;
