"""From raw tables to model rows: history aggregates, the application transform, the schema."""
