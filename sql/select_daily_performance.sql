-- Per ad set and local day: spend and the attribution-matured conversions and value, over the
-- $days whole days before $as_of (the response curves' data).
SELECT
    adset_id,
    max(campaign_id) AS campaign_id,
    date,
    sum(spend) AS spend,
    sum(coalesce(conversions_est, conversions)) AS conversions,
    sum(coalesce(purchase_value_est, purchase_value)) AS purchase_value
FROM insights
WHERE ts >= CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER))
  AND ts < CAST($as_of AS TIMESTAMP)
GROUP BY adset_id, date
ORDER BY adset_id, date;
