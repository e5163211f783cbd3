-- Ad sets in the warehouse (sizes the chunks of a long pull or merge).
SELECT count(*) FROM ad_entities WHERE entity_type = 'adset';
