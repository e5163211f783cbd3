DELETE FROM composite_scores WHERE list_contains($as_of, as_of);
