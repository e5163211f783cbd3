-- One row per scored entity and evaluation time; kept as history (score drift, audits).
CREATE TABLE IF NOT EXISTS composite_scores (
    entity_id      VARCHAR   NOT NULL,
    entity_type    VARCHAR   NOT NULL,
    campaign_id    VARCHAR   NOT NULL,
    pool           VARCHAR,
    as_of          TIMESTAMP NOT NULL,
    status         VARCHAR   NOT NULL,
    score          DOUBLE,
    s_roas         DOUBLE,
    s_cpa          DOUBLE,
    s_frequency    DOUBLE,
    s_engagement   DOUBLE,
    s_velocity     DOUBLE,
    spend          DOUBLE,
    roas           DOUBLE,
    cpa            DOUBLE,
    frequency      DOUBLE,
    ctr            DOUBLE,
    baseline_roas  DOUBLE,
    baseline_cpa   DOUBLE,
    baseline_ctr   DOUBLE,
    evidence_z     DOUBLE,   -- sds by which ROAS differs from baseline, given its purchases
    reason         VARCHAR,
    PRIMARY KEY (entity_id, as_of)
);
