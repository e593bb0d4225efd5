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
-- body: about 120 bytes of hex text, 'Post g: ' then md5 of g, g + 1, g + 2 and the start
-- of md5 of g + 3. Each md5 is computed once (the `hashes` subquery, kept apart by
-- OFFSET 0) and the next rows' ones are read with lead(): a quarter of the hashing.
INSERT INTO posts (id, user_id, body, created_at)
SELECT g,
       1 + (g::bigint * 7919) % 10000,
       'Post ' || g || ': '
           || m || ' ' || lead(m, 1) OVER w || ' ' || lead(m, 2) OVER w
           || ' ' || left(lead(m, 3) OVER w, 12),
       timestamptz '2025-10-02 00:00:00+00'
           + ((g::bigint * 2654435761) % 7776000) * interval '1 second'
FROM (SELECT g, md5(g::text) AS m FROM generate_series(1, 1000003) AS g OFFSET 0) AS hashes
WINDOW w AS (ORDER BY g)
ORDER BY g
LIMIT 1000000;

-- Keys and the index, now that the rows are in (see schema.sql).
ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY (id);
ALTER TABLE posts ADD CONSTRAINT posts_pkey PRIMARY KEY (id);
ALTER TABLE posts ADD CONSTRAINT posts_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
-- Serves "one user's latest posts": equality on user_id, then already in created_at order.
CREATE INDEX posts_user_id_created_at_idx ON posts (user_id, created_at DESC);

-- The rows above carry explicit ids, so move the sequences past them; otherwise the
-- first POST /posts would collide with post 1.
SELECT setval('users_id_seq', (SELECT max(id) FROM users));
SELECT setval('posts_id_seq', (SELECT max(id) FROM posts));
