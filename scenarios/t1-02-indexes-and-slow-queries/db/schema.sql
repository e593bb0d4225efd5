-- Scenario t1-02 schema: a shop's users, products and orders.
--
-- The lab runs this file, then seed.sql, into a fresh database (each as one
-- multi-statement simple query), then VACUUM ANALYZE.
--
-- On purpose there are no secondary indexes for the queries the shop runs: only the
-- primary keys, and the unique constraint on users.email (a unique constraint is enforced
-- with a plain btree index on email, which the case-insensitive login lookup cannot use).
-- Finding which indexes the queries need, and which they do not, is the lesson.

CREATE TABLE users (
    id         bigserial   PRIMARY KEY,
    email      text        NOT NULL UNIQUE,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    category    text      NOT NULL,
    name        text      NOT NULL,
    price_cents integer   NOT NULL CHECK (price_cents > 0)
);

CREATE TABLE orders (
    id          bigserial   PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id),
    product_id  bigint      NOT NULL REFERENCES products (id),
    quantity    integer     NOT NULL CHECK (quantity > 0),
    total_cents integer     NOT NULL,
    -- Five values: 'pending', 'paid', 'shipped', 'delivered', 'cancelled'.
    status      text        NOT NULL DEFAULT 'pending',
    created_at  timestamptz NOT NULL DEFAULT now()
);
