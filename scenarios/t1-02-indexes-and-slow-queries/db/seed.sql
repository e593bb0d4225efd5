-- Scenario t1-02 seed: 100,000 users, 200,000 products in 1,000 categories and
-- 1,000,000 orders (50 for each of 20,000 customers), deterministic.
--
-- No random(): every value is derived from the row number with modular arithmetic
-- (multiplicative hashes) or md5(), so every learner (and every Reset) gets the same rows
-- and the same plans. Dates are fixed (not now()-relative) for the same reason.

-- Emails are stored the way people typed them at sign-up, in mixed case
-- ("User42@Example.com", "USER43@example.com"), which is why the login lookup compares
-- lower(email) = lower($1).
INSERT INTO users (id, email, name, created_at)
SELECT g,
       (ARRAY['User', 'user', 'USER', 'uSer'])[1 + g % 4] || g
           || '@' || (ARRAY['Example.com', 'example.com', 'EXAMPLE.COM'])[1 + g % 3],
       (ARRAY['Maria', 'John', 'Wei', 'Amina', 'Lucas', 'Sofia', 'Omar', 'Yuki'])[1 + g % 8]
           || ' ' || (ARRAY['Lopez', 'Smith', 'Chen', 'Okafor', 'Martin', 'Rossi', 'Haddad', 'Sato'])[1 + (g / 8) % 8],
       timestamptz '2023-01-01 00:00:00+00' + (g % 700) * interval '1 day'
FROM generate_series(1, 100000) AS g;

-- 1,000 leaf categories of 200 products each (a category is selective: 0.1% of the
-- catalogue). The category comes from a multiplicative hash of g, so one category's products
-- are spread over the whole table, as they would be after years of inserts. Prices run from
-- 4.99 to 999.99 (a second hash, unrelated to the category).
INSERT INTO products (id, category, name, price_cents)
SELECT g,
       'category-' || (1 + (g::bigint * 7919) % 1000),
       'Product ' || g || ' ' || left(md5(g::text), 10),
       499 + ((g::bigint * 2654435761) % 99501)::integer
FROM generate_series(1, 200000) AS g;

-- 1,000,000 orders over two years from the 20,000 customers who ever ordered (users 1 to
-- 20,000: 50 orders each; the other 80,000 signed up and never ordered). user_id and
-- created_at come from two unrelated hashes, so one customer's orders sit on 50 different
-- pages and the table's physical order says nothing about anyone's history. Status is
-- skewed the way a real shop's is, most orders long delivered. g % 100: 0-2 pending,
-- 3-5 paid, 6-10 shipped, 11-14 cancelled, 15-99 delivered.
INSERT INTO orders (id, user_id, product_id, quantity, total_cents, status, created_at)
SELECT g,
       1 + (g::bigint * 7919) % 20000,
       p.id,
       1 + g % 3,
       (1 + g % 3) * p.price_cents,
       CASE
           WHEN g % 100 < 3 THEN 'pending'
           WHEN g % 100 < 6 THEN 'paid'
           WHEN g % 100 < 11 THEN 'shipped'
           WHEN g % 100 < 15 THEN 'cancelled'
           ELSE 'delivered'
       END,
       timestamptz '2024-01-01 00:00:00+00'
           + ((g::bigint * 2654435761) % 63072000) * interval '1 second'
FROM generate_series(1, 1000000) AS g
JOIN products p ON p.id = 1 + (g::bigint * 104729) % 200000
ORDER BY g;

-- The rows above carry explicit ids, so move the sequences past them; otherwise the
-- first POST /orders would collide with order 1.
SELECT setval('users_id_seq', (SELECT max(id) FROM users));
SELECT setval('products_id_seq', (SELECT max(id) FROM products));
SELECT setval('orders_id_seq', (SELECT max(id) FROM orders));
