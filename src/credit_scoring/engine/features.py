"""The features stage on Dask: the one application transform, on each partition of applicants.

The applications and their aggregates are range-partitioned by applicant on the same divisions,
and :func:`~credit_scoring.features.frames.feature_frame`, the local engine's (and the
service's) transform, runs on each pair of partitions. Rows come out in applicant order, which is
the order of the raw files of every source (Kaggle's, the synthetic one).
"""

from __future__ import annotations

from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.engine.frames import applicant_divisions, by_applicant, read_frame
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.features.frames import feature_frame


def _features_partition(
    applications: pd.DataFrame, aggregates: pd.DataFrame, schema: FeatureSchema
) -> pd.DataFrame:
    frame = feature_frame(applications.reset_index(), aggregates.reset_index(), schema)
    return frame.set_index(KEY)


def feature_partitions(
    applications: Path, aggregates: Path, schema: FeatureSchema, *, partition_size: int
) -> dd.DataFrame:
    """The model input for the applications of a parquet file, lazily.

    Indexed by applicant in ascending order: ``TARGET`` if known, then the features, with the
    values of :func:`~credit_scoring.features.frames.feature_frame`. Only the file's keys are
    read here, to cut it into partitions of ``partition_size`` applicants.
    """
    wanted = {KEY, TARGET, *schema.inputs}
    columns = [c for c in pq.read_schema(applications).names if c in wanted]
    keys = pd.read_parquet(applications, columns=[KEY])[KEY].to_numpy()
    divisions = applicant_divisions(keys, partition_size)
    apps = by_applicant(read_frame(applications, columns=columns), divisions)
    history = by_applicant(read_frame(aggregates, columns=[KEY, *schema.aggregates]), divisions)
    meta = _features_partition(apps._meta, history._meta, schema)
    return dd.map_partitions(_features_partition, apps, history, schema=schema, meta=meta)


def _rows_of(part: pd.DataFrame, keys: np.ndarray, keep: bool) -> pd.DataFrame:
    return part[part.index.isin(keys) == keep]


def select_applicants(frame: dd.DataFrame, keys: np.ndarray, *, keep: bool) -> dd.DataFrame:
    """The rows of the applicants in ``keys`` (``keep``), or of all the others."""
    return frame.map_partitions(_rows_of, keys, keep, meta=frame._meta)
