-- The shop's catalogue: products, and the reviews customers wrote about them.
CREATE TABLE products (
    id          bigint PRIMARY KEY,
    name        text        NOT NULL,
    category    text        NOT NULL,
    price_cents integer     NOT NULL CHECK (price_cents > 0),
    description text        NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE reviews (
    id         bigint PRIMARY KEY,
    product_id bigint      NOT NULL REFERENCES products (id),
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body       text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- Every query of a product page finds its reviews through this index: the page is slow
-- because a popular product has tens of thousands of reviews to add up, not for want of it.
CREATE INDEX reviews_product_created_idx ON reviews (product_id, created_at DESC);
