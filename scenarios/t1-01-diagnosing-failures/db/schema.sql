-- Scenario t1-01 schema: a social feed of users and their posts.
--
-- The lab runs this file, then seed.sql, into a fresh database (each as one
-- multi-statement simple query), then VACUUM ANALYZE.
--
-- Indexes that exist on purpose: the primary keys, and posts (user_id, created_at DESC)
-- so that GET /users/{id}/posts is already fast. Nothing indexes posts.created_at alone,
-- which is what GET /feed sorts by.

CREATE TABLE users (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE posts (
    id         bigserial   PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id),
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Serves "one user's latest posts": equality on user_id, then already in created_at order.
CREATE INDEX posts_user_id_created_at_idx ON posts (user_id, created_at DESC);
