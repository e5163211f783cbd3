-- Facts about this warehouse file itself: its id (a random UUID made once) scopes plan ids, so
-- two warehouses (e.g. a demo against the Graph API double next to the simulated account)
-- never share a plan id in one Dagster instance. Also what each decision asset last computed
-- (the evaluation point and its inputs: budget_pipeline/defs/evaluation_point.py).
CREATE TABLE IF NOT EXISTS warehouse_info (
    key    VARCHAR NOT NULL PRIMARY KEY,
    value  VARCHAR NOT NULL
);
