-- Scenario t1-10 schema: the bank's account events and what each subscribing service did
-- with them. The core banking system posts each event with its own number; three services
-- subscribe to them (billing, email, analytics), and each records every event it handled.
--
-- The lab runs this file into a fresh database.

CREATE TABLE events (
    id           bigint      PRIMARY KEY,            -- the event's number, in the order posted
    account_id   bigint      NOT NULL,               -- the key: one account's events in order
    amount_cents bigint      NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);

-- The services that subscribe to every event.
CREATE TABLE subscribers (
    name text PRIMARY KEY
);
INSERT INTO subscribers (name) VALUES ('billing'), ('email'), ('analytics');

-- One row each time a subscriber handled an event: the counted effect. No unique key on
-- purpose: an event handled twice shows as two rows.
CREATE TABLE deliveries (
    id          bigserial   PRIMARY KEY,              -- the order in which they were handled
    subscriber  text        NOT NULL REFERENCES subscribers (name),
    event_id    bigint      NOT NULL,
    account_id  bigint      NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_event ON deliveries (event_id);
