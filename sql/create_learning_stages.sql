-- Each ad set's learning_stage_info as last read; empty for the simulator.
CREATE TABLE IF NOT EXISTS learning_stages (
    entity_id        VARCHAR NOT NULL PRIMARY KEY,
    in_learning      BOOLEAN NOT NULL,
    learning_status  VARCHAR
);
