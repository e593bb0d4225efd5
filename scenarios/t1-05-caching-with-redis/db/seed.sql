-- Deterministic: every value derives from the row number, so every learner and every reset
-- get the same catalogue and the same plans.

-- 10,000 products with a description of about 700 characters each.
INSERT INTO products (id, name, category, price_cents, description, updated_at)
SELECT g,
       'Product ' || g,
       'category-' || (1 + (g * 7919) % 40),
       500 + (g * 104729) % 49500,
       repeat(md5(g::text) || ' ', 21),
       timestamptz '2026-01-01 00:00:00+00'
FROM generate_series(1, 10000) AS g;

-- 600,000 reviews. Popular products have many more: product N gets a share about 1/N
-- (product_id = floor(10001^u), u uniform from a hash of the row number), so product 1 has
-- ~45,000 reviews and the last thousand a handful each. Rows are stored in arrival order,
-- not by product, as a real table's would be.
INSERT INTO reviews (id, product_id, rating, body, created_at)
SELECT g,
       least(10000, greatest(1, floor(exp(
           (('x' || substr(md5('r' || g), 1, 8))::bit(32)::bigint / 4294967296.0) * ln(10001)
       ))))::bigint,
       1 + ((g * 2654435761) % 1000 * 7 / 1000 + (g % 3)) % 5,
       'Review ' || g || ': ' || md5(g::text) || md5((g + 1)::text),
       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
FROM generate_series(1, 600000) AS g;
