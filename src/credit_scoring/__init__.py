"""Home Credit default-risk scoring: data contract, pipeline library and serving helpers."""
