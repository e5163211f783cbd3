DELETE FROM trigger_actions WHERE list_contains($as_of, as_of);
