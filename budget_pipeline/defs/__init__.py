"""The orchestration: thin Dagster assets, resources, checks, sensors and schedules."""
