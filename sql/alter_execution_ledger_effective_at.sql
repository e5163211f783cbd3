-- Warehouses made before the ledger kept the account's clock.
ALTER TABLE execution_ledger ADD COLUMN IF NOT EXISTS effective_at TIMESTAMP;
