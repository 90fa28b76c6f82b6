"""The tuning search: a seeded Optuna study over the LightGBM settings, and its report."""
