"""The transform over whole tables: the features stage's population, the package's history.

DataFrames in, the numpy :func:`~credit_scoring.features.transform.transform` inside, so the
stage and the service share one implementation while only the stage needs pandas.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from credit_scoring.contract.tables import KEY, TARGET
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.features.transform import transform


def columns_from_frame(frame: pd.DataFrame, schema: FeatureSchema) -> dict[str, np.ndarray]:
    """Raw columns of a batch: floats with NaN, and labels as objects with None."""
    columns = {name: frame[name].to_numpy(dtype="float64") for name in schema.numeric}
    for name in schema.categorical:
        labels = frame[name].astype(object)
        columns[name] = labels.where(labels.notna(), None).to_numpy()
    return columns


def history_rows(aggregates: pd.DataFrame, ids: Iterable[int], schema: FeatureSchema) -> np.ndarray:
    """The aggregate rows of ``ids`` in schema order; all-missing for applicants without history."""
    table = aggregates.set_index(KEY)[list(schema.aggregates)]
    return table.reindex(list(ids)).to_numpy(dtype="float64")


def feature_frame(
    applications: pd.DataFrame, aggregates: pd.DataFrame, schema: FeatureSchema
) -> pd.DataFrame:
    """The model input for a batch of applications: key, TARGET if known, then the features."""
    matrix = transform(
        columns_from_frame(applications, schema),
        history_rows(aggregates, applications[KEY], schema),
        schema,
    )
    out = pd.DataFrame(matrix, columns=list(schema.features))
    keys = [k for k in (KEY, TARGET) if k in applications.columns]
    return pd.concat([applications[keys].reset_index(drop=True), out], axis=1)
