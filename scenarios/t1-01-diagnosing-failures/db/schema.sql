-- Scenario t1-01 schema: a social feed of users and their posts.
--
-- The lab runs this file, then seed.sql, into a fresh database (each as one
-- multi-statement simple query), then VACUUM ANALYZE.
--
-- The tables start bare: their keys and the one secondary index are added at the end of
-- seed.sql, after the bulk load (building an index once is much faster than updating it a
-- million times, and a foreign key added afterwards is checked in one join instead of once
-- per row). The finished schema is:
--   users  PRIMARY KEY (id)
--   posts  PRIMARY KEY (id), FOREIGN KEY (user_id) REFERENCES users (id),
--          INDEX posts_user_id_created_at_idx (user_id, created_at DESC)
-- Indexes that exist on purpose: the primary keys, and posts (user_id, created_at DESC)
-- so that GET /users/{id}/posts is already fast. Nothing indexes posts.created_at alone,
-- which is what GET /feed sorts by.

CREATE TABLE users (
    id         bigserial,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE posts (
    id         bigserial,
    user_id    bigint      NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
