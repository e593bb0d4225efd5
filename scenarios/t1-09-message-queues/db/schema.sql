-- Scenario t1-09 schema: the shop's orders. The checkout posts each order with its own
-- number (so a retried POST is the same order, not a second one); the order service records
-- it and has the fulfilment provider ship it.
--
-- The lab runs this file into a fresh database (there is no seed: the shop opens empty).

CREATE TABLE orders (
    id           bigint      PRIMARY KEY,            -- the checkout's order number
    customer_id  bigint      NOT NULL,
    amount_cents bigint      NOT NULL CHECK (amount_cents > 0),
    -- 'accepted' when recorded, 'fulfilled' once the fulfilment provider has shipped it.
    status       text        NOT NULL DEFAULT 'accepted'
                             CHECK (status IN ('accepted', 'fulfilled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    fulfilled_at timestamptz
);
