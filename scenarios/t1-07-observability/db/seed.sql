-- 2,000 accounts and 40,000 past orders, all captured. Deterministic: every value comes
-- from the row number, so every learner and every reset get the same rows.

INSERT INTO accounts (id, name)
SELECT g, 'account ' || g
FROM generate_series(1, 2000) AS g;

INSERT INTO orders (id, account_id, amount_cents, status, created_at, captured_at)
SELECT g,
       1 + (g::bigint * 7919) % 2000,
       100 + (g::bigint * 104729) % 20000,
       'captured',
       timestamptz '2026-01-01' + g * interval '7 minutes',
       timestamptz '2026-01-01' + g * interval '7 minutes' + interval '1 hour'
FROM generate_series(1, 40000) AS g;

SELECT setval('orders_id_seq', 40000);

UPDATE accounts a
SET captured_cents = t.total
FROM (SELECT account_id, sum(amount_cents) AS total FROM orders GROUP BY account_id) t
WHERE t.account_id = a.id;
