DELETE FROM ad_entities;
