-- Campaigns and ad sets as the source reports them now, with the pool the config assigns.
CREATE TABLE IF NOT EXISTS ad_entities (
    entity_id        VARCHAR NOT NULL PRIMARY KEY,
    entity_type      VARCHAR NOT NULL,
    campaign_id      VARCHAR NOT NULL,
    name             VARCHAR NOT NULL,
    status           VARCHAR NOT NULL,
    budget_type      VARCHAR,
    daily_budget     BIGINT,   -- minor units
    lifetime_budget  BIGINT,   -- minor units
    budget_remaining BIGINT,   -- minor units
    end_date         DATE,
    currency         VARCHAR NOT NULL,
    pool             VARCHAR,
    locked           BOOLEAN NOT NULL,
    pulled_at        TIMESTAMP NOT NULL
);
