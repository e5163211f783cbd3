-- Set one fact about this warehouse (see create_warehouse_info).
INSERT INTO warehouse_info (key, value) VALUES ($key, $value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;
