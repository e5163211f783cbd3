-- Per ad set: the first hour with Insights (an ad set seen later did not exist before it).
SELECT adset_id, min(ts) AS first_ts
FROM insights
GROUP BY adset_id
ORDER BY adset_id;
