-- SOLUTION (idempotency): the key a shop sends with each POST /payments (Idempotency-Key), stored with the payment:
-- one payment per key and shop. The unique index is what makes the claim atomic: of two
-- requests with the same key, exactly one INSERT gets the row.
ALTER TABLE payments ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX payments_idempotency_key ON payments (client_id, idempotency_key);
