INSERT INTO warehouse_info (key, value) VALUES ('warehouse_id', $id) ON CONFLICT (key) DO NOTHING;
