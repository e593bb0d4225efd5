-- The shop's accounts and their baskets.
CREATE TABLE users (
    id            bigint PRIMARY KEY,
    username      text   NOT NULL UNIQUE,
    name          text   NOT NULL,
    -- sha256 of "<salt>:<password>", hex: never the password itself.
    salt          text   NOT NULL,
    password_hash text   NOT NULL
);

CREATE TABLE cart_items (
    id         bigserial   PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id),
    product_id integer     NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cart_items_user_idx ON cart_items (user_id);
