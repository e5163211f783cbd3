-- Rebuild the window's hourly rows from the latest pull: re-running replaces, never duplicates.
-- $maturity[k + 1] is the expected share of an hour's conversions already reported k hours
-- after the hour ended; conversions_est/purchase_value_est divide by it (1 past the list).
INSERT INTO insights BY NAME
WITH aged AS (
    SELECT
        *,
        CAST(date AS TIMESTAMP) + to_hours(CAST(hour AS INTEGER)) AS ts,
        greatest(
            date_diff('hour', CAST(date AS TIMESTAMP) + to_hours(CAST(hour AS INTEGER) + 1), reported_at),
            0
        ) AS age_hours
    FROM raw_insights
    WHERE date BETWEEN $start AND $end
)
SELECT
    date,
    hour,
    ts,
    campaign_id,
    adset_id,
    spend,
    impressions,
    reach,
    clicks,
    conversions,
    purchase_value,
    pulled_at,
    reported_at,
    conversions / coalesce(list_extract($maturity::DOUBLE[], age_hours + 1), 1.0) AS conversions_est,
    purchase_value / coalesce(list_extract($maturity::DOUBLE[], age_hours + 1), 1.0) AS purchase_value_est
FROM aged;
