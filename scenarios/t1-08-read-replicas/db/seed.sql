-- Deterministic: 300 accounts; user N is "userN" with the password "secret-N" (the load
-- generator logs in as them). Each has 2,000 expenses over 2026 in eight categories,
-- recorded interleaved with everyone else's (as a live ledger fills), so one user's rows
-- sit on as many pages as they have rows: a summary reads about 2,000 pages.
INSERT INTO users (id, username, name, salt, password_hash)
SELECT g,
       'user' || g,
       'Member ' || g,
       'salt-' || g,
       encode(sha256(convert_to('salt-' || g || ':secret-' || g, 'UTF8')), 'hex')
FROM generate_series(1, 300) AS g;

-- h: a multiplicative hash of the row number, so categories and amounts look random but
-- are the same on every seed.
INSERT INTO expenses (user_id, category, amount_cents, note, spent_at)
SELECT 1 + g % 300,
       (ARRAY['groceries', 'rent', 'transport', 'eating out', 'utilities', 'health', 'travel', 'fun'])[1 + (h >> 13) % 8],
       100 + (h >> 3) % 19900,
       'expense ' || g,
       timestamptz '2026-01-01 00:00:00+00' + g * interval '43 seconds'
FROM generate_series(1, 600000) AS g,
     LATERAL (SELECT (g::bigint * 2654435761) % 4294967296 AS h) AS hashed;
