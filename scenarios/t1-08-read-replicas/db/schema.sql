-- The ledger's accounts and every expense they recorded.
CREATE TABLE users (
    id            bigint PRIMARY KEY,
    username      text   NOT NULL UNIQUE,
    name          text   NOT NULL,
    -- sha256 of "<salt>:<password>", hex: never the password itself.
    salt          text   NOT NULL,
    password_hash text   NOT NULL
);

CREATE TABLE expenses (
    id           bigserial   PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id),
    category     text        NOT NULL,
    amount_cents integer     NOT NULL CHECK (amount_cents > 0),
    note         text        NOT NULL,
    spent_at     timestamptz NOT NULL DEFAULT now()
);
-- Serves both pages: one user's rows, newest first.
CREATE INDEX expenses_user_spent_idx ON expenses (user_id, spent_at DESC, id DESC);
