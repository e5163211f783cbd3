-- A small integer for every ad-set and campaign id the Insights have named, assigned once
-- (0, 1, ... in the order ids first arrive, by id within one arrival) and never changed or
-- reused. `insights_daily` carries the keys next to the ids, so the decision queries hand
-- half a million ad-set days to polars as integers and the ~10k distinct ids once (at 10k
-- ad sets the two string columns were 15 of the curves query's 27 ms, and matching them to
-- budget holders 15 ms more); the same id as an ad set's and a campaign's has one key.
CREATE TABLE IF NOT EXISTS entity_keys (
    entity_id   VARCHAR NOT NULL PRIMARY KEY,
    entity_key  INTEGER NOT NULL UNIQUE
);
