"""Validating a model in credit-risk terms: discrimination, rank ordering, stability, fairness."""
