-- Scenario t1-04 seed: 50 categories of 200 products each, deterministic (no random()).
INSERT INTO categories (id, name)
SELECT g, 'category_' || g FROM generate_series(1, 50) AS g;

INSERT INTO products (id, category_id, name, price_cents, stock)
SELECT g,
       1 + (g - 1) / 200,
       'product_' || g || '_' || left(md5(g::text), 8),
       199 + (g::bigint * 7919) % 20000,
       (g::bigint * 104729) % 500
FROM generate_series(1, 10000) AS g;
