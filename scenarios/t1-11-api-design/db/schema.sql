-- Scenario t1-11 schema: the payments the partner shops made through the payments API.
-- A shop is identified by its client ID (the X-Client-Id header its integration sends).

CREATE TABLE payments (
    id            bigserial   PRIMARY KEY,
    client_id     text        NOT NULL,              -- the shop, e.g. 'shop-3'
    order_id      bigint      NOT NULL,              -- the shop's own order number
    amount_cents  bigint      NOT NULL CHECK (amount_cents > 0),
    -- 'pending' while the card processor is asked, 'charged' once it approved the charge,
    -- 'failed' when it refused or could not be reached.
    status        text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'charged', 'failed')),
    processor_ref bigint,                            -- the processor's reference for the charge
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A shop's payments, newest first (GET /payments).
CREATE INDEX payments_client_id ON payments (client_id, id DESC);
