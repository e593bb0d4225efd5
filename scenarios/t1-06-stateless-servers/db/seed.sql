-- Deterministic: 10,000 accounts; user N is "userN" with the password "secret-N" (the load
-- generator logs in as them), and a basket of N % 4 items.
INSERT INTO users (id, username, name, salt, password_hash)
SELECT g,
       'user' || g,
       'Customer ' || g,
       'salt-' || g,
       encode(sha256(convert_to('salt-' || g || ':secret-' || g, 'UTF8')), 'hex')
FROM generate_series(1, 10000) AS g;

INSERT INTO cart_items (user_id, product_id, added_at)
SELECT u, 1 + (u * 7 + i) % 500, timestamptz '2026-11-01 00:00:00+00'
FROM generate_series(1, 10000) AS u, generate_series(1, 3) AS i
WHERE i <= u % 4;
