SELECT value FROM warehouse_info WHERE key = 'warehouse_id';
