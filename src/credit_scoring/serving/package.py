"""The package the service loads: every artifact it needs, under a version made of its content.

The package stage writes these files (:mod:`credit_scoring.serving.packaging`), and a manifest
naming their version and hashes, into one folder that DVC versions (``models/package``).
:mod:`credit_scoring.serving.store` puts that folder into the BentoML model store, its cache; the
service (and the FastAPI baseline, and the tests) read it back with :meth:`Package.load`, which
needs no DataFrame library. Nothing in it is typed twice: the threshold, the costs and the bands
are ``threshold.json`` as the threshold stage wrote it, and the points scale of the score is
``scorecard.json`` (the cut-off score is the threshold's points, not stored).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from credit_scoring.contract.tables import KEY
from credit_scoring.errors import InputError
from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.calibration import Calibration
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.modelling.scorecard import Scorecard
from credit_scoring.serving.reasons import ReasonCodes
from credit_scoring.serving.requests import RequestSchema

MODEL, SCHEMA, THRESHOLD = "model.txt", "feature_schema.json", "threshold.json"
INPUTS, CARD, CALIBRATION, REASONS = "inputs.json", "card.json", "calibration.json", "reasons.json"
SCORECARD = "scorecard.json"
KNOWN_IDS, KNOWN_HISTORY, APPLICATIONS = (
    "known_ids.npy",
    "known_history.npy",
    "applications.npz",
)
FILES = (
    MODEL,
    CALIBRATION,
    REASONS,
    SCHEMA,
    THRESHOLD,
    SCORECARD,
    INPUTS,
    CARD,
    KNOWN_IDS,
    KNOWN_HISTORY,
    APPLICATIONS,
)
MANIFEST = "manifest.json"


class PackageError(InputError, RuntimeError):
    """The package is incomplete or its parts disagree; the service must not start on it."""


def package_version(hashes: Mapping[str, str]) -> str:
    """A version made of the content: two packages differ in version iff a file differs."""
    digest = hashlib.sha256()
    for name in sorted(hashes):
        digest.update(f"{name}={hashes[name]}\n".encode())
    return digest.hexdigest()[:16]


def file_hashes(folder: Path) -> dict[str, str]:
    """Each package file's SHA-256, as the manifest records them."""
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@dataclass(frozen=True)
class Manifest:
    """What a package folder is: its name, its content version and each file's SHA-256."""

    name: str
    version: str
    files: Mapping[str, str]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def of(cls, name: str, hashes: Mapping[str, str]) -> Manifest:
        return cls(name=name, version=package_version(hashes), files=dict(hashes))

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "name": self.name, "version": self.version, "files": self.files}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Manifest:
        return cls(name=payload["name"], version=payload["version"], files=payload["files"])

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest of a package folder; a missing or unreadable one is a PackageError."""
        path = folder / MANIFEST
        if not path.is_file():
            raise PackageError(
                f"{folder} holds no package ({MANIFEST} missing); `make repro` builds it, "
                "`dvc pull` fetches the one DVC versions"
            )
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as err:
            raise PackageError(f"{path} is not a package manifest: {err}") from None

    def verify(self, folder: Path) -> None:
        """Refuse a folder whose files are not the ones the manifest names (edited, partial)."""
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise PackageError(f"package {folder} lacks {missing}")
        changed = [n for n, h in file_hashes(folder).items() if self.files.get(n) != h]
        if changed or package_version(self.files) != self.version:
            raise PackageError(
                f"package {folder}: {changed or 'the version'} differ from {MANIFEST}; "
                "`dvc checkout` restores the versioned package"
            )


def _model_features(path: Path) -> list[str]:
    """The feature names in a LightGBM text model's header, without loading its trees."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("feature_names="):
                return line.rstrip("\n").removeprefix("feature_names=").split(" ")
            if line.startswith("Tree="):
                break
    raise PackageError(f"{path} is not a LightGBM text model (no feature_names line)")


def check_package(folder: Path) -> FeatureSchema:
    """Refuse a package that is incomplete or whose model, schema and tables disagree.

    Reads file headers only (no trees, no table), so a server can check before it forks its
    workers. Returns the feature schema.
    """
    missing = [name for name in FILES if not (folder / name).exists()]
    if missing:
        raise PackageError(f"package {folder} lacks {missing}; `make repro` packages the model")
    schema = FeatureSchema.from_json((folder / SCHEMA).read_text())
    model_features = _model_features(folder / MODEL)
    if model_features != list(schema.features):
        extra = sorted(set(model_features) - set(schema.features))[:5]
        absent = sorted(set(schema.features) - set(model_features))[:5]
        raise PackageError(
            f"the model has {len(model_features)} features and the feature schema "
            f"{len(schema.features)}, or another order (only in the model: {extra}; "
            f"only in the schema: {absent}); package a model trained on this schema"
        )
    ids = np.load(folder / KNOWN_IDS, mmap_mode="r")
    history = np.load(folder / KNOWN_HISTORY, mmap_mode="r")
    if history.shape != (ids.size, len(schema.aggregates)):
        raise PackageError(
            f"the history table is {history.shape}, but the schema has "
            f"{len(schema.aggregates)} aggregates for {ids.size} applicants"
        )
    if set(read_inputs(folder).fields) != {*schema.inputs, *schema.audited}:
        raise PackageError("inputs.json and the feature schema list different input fields")
    Calibration.from_json((folder / CALIBRATION).read_text())
    read_reasons(folder)
    threshold = ThresholdDecision.from_json((folder / THRESHOLD).read_text()).threshold
    if not 0.0 <= float(threshold) <= 1.0 + 1e-12:
        raise PackageError(f"threshold {threshold} is not a probability")
    Scorecard.from_json((folder / SCORECARD).read_text())
    return schema


def check_stored(folder: Path, version: str) -> FeatureSchema:
    """Refuse a package that is not ``version`` byte for byte, or not consistent.

    Every file's SHA-256 must be the manifest's, and the manifest's version the one asked for,
    so a model swapped in the store is never served under the old version. Returns the
    feature schema (:func:`check_package`).
    """
    manifest = Manifest.read(folder)
    if manifest.version != version:
        raise PackageError(
            f"package {folder} is version {manifest.version}, not {version}; "
            "`python -m credit_scoring.serving.store` stores a package under its own version"
        )
    manifest.verify(folder)
    return check_package(folder)


def read_inputs(folder: Path) -> RequestSchema:
    """The fields a request may send, as the package states them (``inputs.json``)."""
    return RequestSchema.from_dict(json.loads((folder / INPUTS).read_text()))


def read_reasons(folder: Path) -> ReasonCodes:
    """The reason codes and the officers' override reasons (``reasons.json``)."""
    return ReasonCodes.from_dict(json.loads((folder / REASONS).read_text()))


@dataclass(frozen=True)
class Applications:
    """The stored application fields of the test population, looked up by client id.

    ``applications.npz`` holds one array a field (numbers as int64 or float64 with NaN for
    missing, labels as text with "" for missing) beside the ids, so that numpy reads it and the
    serving image needs no table library.
    """

    columns: Mapping[str, np.ndarray]
    rows: Mapping[int, int]  # client id: its row in every column

    @classmethod
    def read(cls, path: Path) -> Applications:
        with np.load(path, allow_pickle=False) as stored:
            columns = {name: stored[name] for name in stored.files}
        ids = columns.pop(KEY)
        return cls(columns, {int(cid): i for i, cid in enumerate(ids.tolist())})

    def __contains__(self, client_id: object) -> bool:
        return client_id in self.rows

    def fields(self, client_id: int) -> dict[str, Any]:
        """One applicant's fields as a request would send them (missing values as None)."""
        at = self.rows[client_id]
        return {name: _plain(column[at]) for name, column in self.columns.items()}

    def stating(self, names: Sequence[str]) -> list[int]:
        """The client ids whose fields ``names`` all hold a value."""
        stated = np.ones(len(self.rows), dtype=bool)
        for name in names:
            stated &= ~_missing(self.columns[name])
        return np.fromiter(self.rows, dtype="int64", count=len(self.rows))[stated].tolist()


def _missing(column: np.ndarray) -> np.ndarray:
    if column.dtype.kind == "U":
        return column == ""
    return np.isnan(column) if column.dtype.kind == "f" else np.zeros(column.shape, dtype=bool)


def _plain(value: np.generic) -> Any:
    """A stored value as the JSON value a client would send (None where it is missing)."""
    return None if _missing(np.asarray(value)) else value.item()


@dataclass(frozen=True)
class Package:
    """A loaded package: the model, its contracts and the history of known applicants."""

    booster: lgb.Booster
    calibration: Calibration
    reasons: ReasonCodes
    schema: FeatureSchema
    inputs: RequestSchema
    decision: ThresholdDecision
    scorecard: Scorecard
    card: Mapping[str, Any]
    known_ids: np.ndarray
    known_history: np.ndarray
    applications: Applications
    version: str
    files: Mapping[str, str]  # each file's SHA-256: what a decision record names it by

    @classmethod
    def load(cls, folder: Path, version: str | None = None) -> Package:
        """Load a package folder that :func:`check_stored` accepts as ``version`` (by default,
        the version its manifest names)."""
        manifest = Manifest.read(folder)
        check_stored(folder, version or manifest.version)
        return cls(
            booster=lgb.Booster(model_file=str(folder / MODEL)),
            calibration=Calibration.from_json((folder / CALIBRATION).read_text()),
            reasons=read_reasons(folder),
            schema=FeatureSchema.from_json((folder / SCHEMA).read_text()),
            inputs=read_inputs(folder),
            decision=ThresholdDecision.from_json((folder / THRESHOLD).read_text()),
            scorecard=Scorecard.from_json((folder / SCORECARD).read_text()),
            card=json.loads((folder / CARD).read_text()),
            known_ids=np.load(folder / KNOWN_IDS),
            known_history=np.load(folder / KNOWN_HISTORY, mmap_mode="r"),
            applications=Applications.read(folder / APPLICATIONS),
            version=manifest.version,
            files=manifest.files,
        )

    def held(self, client_ids: Sequence[int]) -> np.ndarray:
        """Whether the package holds each applicant's history (train or test population).

        One search for all of them: a search per applicant, in a loop, would let go of the GIL
        and take it back each time, and a thread doing that starves the others (the event
        loop's among them) for as long as the loop runs.
        """
        return self._positions(client_ids)[1]

    def history(self, client_ids: Sequence[int | None]) -> np.ndarray:
        """Aggregate rows for the given applicants (NaN for None); unknown ids raise KeyError."""
        rows = np.full((len(client_ids), len(self.schema.aggregates)), np.nan)
        wanted = [(i, cid) for i, cid in enumerate(client_ids) if cid is not None]
        if wanted:
            at, held = self._positions([cid for _, cid in wanted])
            if not held.all():
                raise KeyError(wanted[int(np.argmin(held))][1])
            rows[[i for i, _ in wanted]] = self.known_history[at]
        return rows

    def _positions(self, client_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each id's row in the known history, and whether it is there at all."""
        ids = np.asarray(client_ids, dtype="int64").reshape(-1)
        if self.known_ids.size == 0:
            return np.zeros(ids.size, dtype="int64"), np.zeros(ids.size, dtype=bool)
        at = np.searchsorted(self.known_ids, ids).clip(max=self.known_ids.size - 1)
        return at, self.known_ids[at] == ids
