"""Where the raw tables come from: Kaggle files on disk, the Kaggle API, the synthetic generator."""
