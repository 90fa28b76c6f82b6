"""The model's inputs and features (``feature_schema.json``): the contract with the service."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credit_scoring.contract.tables import CATEGORY, KEY, TARGET, Table
from credit_scoring.errors import ConfigError, InputError

EMPLOYED_PLACEHOLDER = "DAYS_EMPLOYED_ANOM"  # 1 where DAYS_EMPLOYED held 365243 (pensioners)
NOT_APPLICABLE = "XNA"  # Home Credit's "not available" level: a missing value, not a category
ENGINEERED = (
    EMPLOYED_PLACEHOLDER,
    "CREDIT_INCOME_RATIO",
    "ANNUITY_INCOME_RATIO",
    "ANNUITY_CREDIT_RATIO",
    "GOODS_CREDIT_RATIO",
    "INCOME_PER_PERSON",
    "EXT_SOURCE_MEAN",
    "EXT_SOURCE_STD",
    "EXT_SOURCE_MIN",
    "EXT_SOURCE_MAX",
    "EXT_SOURCE_PROD",
    "EXT_SOURCE_COUNT",
    "DOCUMENT_COUNT",
    "CONTACT_FLAG_COUNT",
)


class FeatureSchemaError(InputError, ValueError):
    """A feature schema file that contradicts itself."""


@dataclass(frozen=True)
class FeatureSchema:
    """The contract between the pipeline and the service (``feature_schema.json``).

    ``numeric`` and ``categorical`` are the raw application fields a caller may send and the
    model reads; a categorical's code is its index in ``levels``, and ``len(levels)`` means
    "unknown". ``audited`` are application fields on a prohibited basis (sex, marital status):
    a caller may send them and they are kept beside every decision for fair-lending audits, but
    they are never model inputs.
    """

    numeric: tuple[str, ...]
    categorical: Mapping[str, tuple[str, ...]]
    aggregates: tuple[str, ...]
    audited: tuple[str, ...] = ()

    # Cached: every request's transform asks for them, and the schema never changes.
    @functools.cached_property
    def inputs(self) -> tuple[str, ...]:
        return self.numeric + tuple(self.categorical)

    @functools.cached_property
    def features(self) -> tuple[str, ...]:
        return self.inputs + ENGINEERED + self.aggregates

    @property
    def categorical_indices(self) -> list[int]:
        start = len(self.numeric)
        return list(range(start, start + len(self.categorical)))

    def to_dict(self) -> dict[str, Any]:
        kinds = {**dict.fromkeys(self.numeric, "float64"), **dict.fromkeys(ENGINEERED, "float64")}
        kinds.update(dict.fromkeys(self.aggregates, "float64"))
        return {
            "features": [
                {"name": name, "dtype": "category", "levels": list(self.categorical[name])}
                if name in self.categorical
                else {"name": name, "dtype": kinds[name]}
                for name in self.features
            ],
            "numeric_inputs": list(self.numeric),
            "categorical_inputs": {k: list(v) for k, v in self.categorical.items()},
            "aggregates": list(self.aggregates),
            "audited_inputs": list(self.audited),
            "unknown_level_code": "len(levels)",
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSchema:
        schema = cls(
            numeric=tuple(raw["numeric_inputs"]),
            categorical={k: tuple(v) for k, v in raw["categorical_inputs"].items()},
            aggregates=tuple(raw["aggregates"]),
            audited=tuple(raw.get("audited_inputs", ())),
        )
        listed = [f["name"] for f in raw["features"]]
        if listed != list(schema.features):
            raise FeatureSchemaError(
                "feature_schema.json lists features in another order than it defines"
            )
        return schema

    @classmethod
    def from_json(cls, text: str) -> FeatureSchema:
        return cls.from_dict(json.loads(text))


def build_schema(
    applications: Table, aggregates: Sequence[str], exclude: Sequence[str] = ()
) -> FeatureSchema:
    """Derive the feature schema from the contract's application table and the aggregates.

    ``exclude`` names the application fields audited but never used (the prohibited bases).

    Raises:
        ConfigError: an excluded name that is not an application field.
    """
    known = {col.name for col in applications.columns} - {KEY, TARGET}
    unknown = [name for name in exclude if name not in known]
    if unknown:
        raise ConfigError(f"features.exclude: {unknown} are not fields of {applications.name}")
    numeric, categorical = [], {}
    for col in applications.columns:
        if col.name in (KEY, TARGET) or col.name in exclude:
            continue
        if col.dtype == CATEGORY:
            categorical[col.name] = tuple(lv for lv in col.levels if lv != NOT_APPLICABLE)
        else:
            numeric.append(col.name)
    audited = tuple(col.name for col in applications.columns if col.name in exclude)
    return FeatureSchema(tuple(numeric), categorical, tuple(aggregates), audited)
