-- Warehouses made before scores carried how credible their deviation is.
ALTER TABLE composite_scores ADD COLUMN IF NOT EXISTS evidence_z DOUBLE;
