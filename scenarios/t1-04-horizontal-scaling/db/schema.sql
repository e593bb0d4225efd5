-- Scenario t1-04 schema: a product catalogue. The report reads one category's products
-- through the index on category_id: PostgreSQL's part of a report is small on purpose.
CREATE TABLE categories (
    id   integer PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE products (
    id          integer PRIMARY KEY,
    category_id integer NOT NULL REFERENCES categories (id),
    name        text NOT NULL,
    price_cents integer NOT NULL,
    stock       integer NOT NULL
);

CREATE INDEX products_category_id ON products (category_id);
