INSERT OR REPLACE INTO ad_entities BY NAME SELECT * FROM staged_ad_entities;
