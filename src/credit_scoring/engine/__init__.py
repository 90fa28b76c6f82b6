"""Where aggregate, features and train run: in this process (local) or on a Dask cluster.

The cluster path reuses the local engine's functions partition by partition (the aggregation
plan, the application transform, the training protocol), so both give the same results. Only
``cluster`` is imported by the stages up front; the modules that import dask load when the
engine is ``dask``, so the local engine never pays for them.
"""
