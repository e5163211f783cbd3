-- trigger_states as they were before their last advance (the intervals of that advance are
-- in warehouse_info): when the scores of those intervals are computed again (history
-- backfilled, an ad set renamed, a new build), the advance is undone and evaluated again
-- instead of counting the same intervals twice. Same columns as trigger_states.
CREATE TABLE IF NOT EXISTS trigger_states_prior AS SELECT * FROM trigger_states LIMIT 0;
