-- Key the ad-set and campaign ids of the hourly rows on local dates $start..$end that have
-- no key yet (create_entity_keys): the next integers, in id order. Run before rolling those
-- dates up (insert_insights_daily_window joins the keys).
INSERT INTO entity_keys
SELECT
    entity_id,
    (SELECT coalesce(max(entity_key), -1) FROM entity_keys)
        + CAST(row_number() OVER (ORDER BY entity_id) AS INTEGER) AS entity_key
FROM (
    SELECT adset_id AS entity_id FROM insights WHERE date BETWEEN $start AND $end
    UNION
    SELECT campaign_id FROM insights WHERE date BETWEEN $start AND $end
) AS seen
WHERE entity_id NOT IN (SELECT entity_id FROM entity_keys);
