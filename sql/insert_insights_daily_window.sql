-- Roll the hourly rows of local dates $start..$end up into insights_daily (after deleting
-- those dates there): one row per ad set and date, in date order; the `*_am` sums over hours
-- 0-11 only; each id with its key (insert_entity_keys_window runs first).
INSERT INTO insights_daily
SELECT
    day.date,
    day.adset_id,
    day.campaign_id,
    adset.entity_key AS adset_key,
    campaign.entity_key AS campaign_key,
    day.* EXCLUDE (date, adset_id, campaign_id)
FROM (
    SELECT
        date,
        adset_id,
        max(campaign_id) AS campaign_id,
        count(*) AS hours,
        coalesce(
            bit_or(CASE WHEN spend > 0 THEN CAST(1 AS INTEGER) << CAST(hour AS INTEGER) END), 0
        ) AS spent_hours,
        sum(CAST(spend AS DECIMAL(38, 10))) AS spend,
        sum(CAST(impressions AS HUGEINT)) AS impressions,
        sum(CAST(reach AS HUGEINT)) AS reach,
        sum(CAST(clicks AS HUGEINT)) AS clicks,
        sum(CAST(coalesce(conversions_est, conversions) AS DECIMAL(38, 10))) AS conversions,
        sum(CAST(coalesce(purchase_value_est, purchase_value) AS DECIMAL(38, 10)))
            AS purchase_value,
        count(*) FILTER (WHERE hour < 12) AS hours_am,
        coalesce(sum(CAST(spend AS DECIMAL(38, 10))) FILTER (WHERE hour < 12), 0) AS spend_am,
        coalesce(sum(CAST(impressions AS HUGEINT)) FILTER (WHERE hour < 12), 0) AS impressions_am,
        coalesce(sum(CAST(reach AS HUGEINT)) FILTER (WHERE hour < 12), 0) AS reach_am,
        coalesce(sum(CAST(clicks AS HUGEINT)) FILTER (WHERE hour < 12), 0) AS clicks_am,
        coalesce(
            sum(CAST(coalesce(conversions_est, conversions) AS DECIMAL(38, 10)))
                FILTER (WHERE hour < 12),
            0
        ) AS conversions_am,
        coalesce(
            sum(CAST(coalesce(purchase_value_est, purchase_value) AS DECIMAL(38, 10)))
                FILTER (WHERE hour < 12),
            0
        ) AS purchase_value_am
    FROM insights
    WHERE date BETWEEN $start AND $end
    GROUP BY date, adset_id
) AS day
JOIN entity_keys AS adset ON adset.entity_id = day.adset_id
JOIN entity_keys AS campaign ON campaign.entity_id = day.campaign_id
ORDER BY day.date, day.adset_id;
