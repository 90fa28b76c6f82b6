"""Watching the population after training: drift reports for the pipeline and for new batches."""
