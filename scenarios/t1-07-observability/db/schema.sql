-- The shop's orders: each order is authorized with the payments provider when placed and
-- captured (the money actually taken) later, in batches, by the service's capture task.

CREATE TABLE accounts (
    id             bigint PRIMARY KEY,
    name           text   NOT NULL,
    -- Authorized and not yet captured: the sum of this account's 'placed' orders.
    open_cents     bigint NOT NULL DEFAULT 0,
    -- Taken: the sum of its 'captured' orders.
    captured_cents bigint NOT NULL DEFAULT 0
);

CREATE TABLE orders (
    id           bigserial   PRIMARY KEY,
    account_id   bigint      NOT NULL REFERENCES accounts (id),
    amount_cents bigint      NOT NULL CHECK (amount_cents > 0),
    status       text        NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'captured')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    captured_at  timestamptz
);

-- An account's orders, newest first (GET /accounts/{id}/orders).
CREATE INDEX orders_account_id_id_idx ON orders (account_id, id);
-- What the capture task looks for: orders still to capture.
CREATE INDEX orders_placed_idx ON orders (account_id) WHERE status = 'placed';
