"""Training and choosing: cross-validated LightGBM, curves, the threshold, the model card."""
