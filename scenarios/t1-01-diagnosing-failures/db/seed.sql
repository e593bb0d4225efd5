-- Scenario t1-01 seed: 10,000 users and 1,000,000 posts, deterministic.
--
-- No random(): every value is derived from the row number with modular arithmetic or
-- md5(), so every learner (and every Reset) gets the same rows and the same plans.
-- Dates are fixed too (not now()-relative), for the same reason.

INSERT INTO users (id, name, created_at)
SELECT g,
       'user_' || g,
       timestamptz '2025-01-01 00:00:00+00' + (g % 365) * interval '1 day'
FROM generate_series(1, 10000) AS g;

-- Authors: a multiplicative hash of g spreads posts over all users (about 100 each)
-- without clustering consecutive posts on one author.
-- created_at: spread over the 90 days ending 2025-12-31, in an order unrelated to id
-- (another multiplicative hash), so the table's physical order does not match the feed's
-- sort order and the planner cannot lean on correlation.
-- body: about 120 bytes of hex text from md5 of the row number.
INSERT INTO posts (id, user_id, body, created_at)
SELECT g,
       1 + (g::bigint * 7919) % 10000,
       'Post ' || g || ': '
           || md5(g::text) || ' ' || md5((g + 1)::text) || ' ' || md5((g + 2)::text)
           || ' ' || left(md5((g + 3)::text), 12),
       timestamptz '2025-10-02 00:00:00+00'
           + ((g::bigint * 2654435761) % 7776000) * interval '1 second'
FROM generate_series(1, 1000000) AS g;

-- The rows above carry explicit ids, so move the sequences past them; otherwise the
-- first POST /posts would collide with post 1.
SELECT setval('users_id_seq', (SELECT max(id) FROM users));
SELECT setval('posts_id_seq', (SELECT max(id) FROM posts));
