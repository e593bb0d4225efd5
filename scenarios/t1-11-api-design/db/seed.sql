-- Scenario t1-11 seed: 10,000 settled payments of nine shops (shop-1 .. shop-9), derived
-- from the row number so every learner gets the same rows. Their order numbers start at
-- 1,000,001, above the numbers the load uses.
INSERT INTO payments (client_id, order_id, amount_cents, status, processor_ref, created_at)
SELECT 'shop-' || (1 + g % 9),
       1000000 + g,
       100 + (g * 7919) % 99900,
       'charged',
       g,
       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 10000) AS g;
