"""Plot tables for the train stage, small enough to commit: curves thinned to ~200 points."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from credit_scoring.modelling.cross_validation import Fold

POINTS = 200


def _thin(n: int, points: int = POINTS) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, points)).round().astype(int))


def roc_table(y: np.ndarray, p: np.ndarray) -> list[dict]:
    fpr, tpr, _ = roc_curve(y, p)
    keep = _thin(len(fpr))
    return [{"fpr": float(fpr[i]), "tpr": float(tpr[i])} for i in keep]


def precision_recall_table(y: np.ndarray, p: np.ndarray) -> list[dict]:
    precision, recall, _ = precision_recall_curve(y, p)
    keep = _thin(len(precision))
    return [{"recall": float(recall[i]), "precision": float(precision[i])} for i in keep]


def learning_curve_table(folds: Sequence[Fold], metric: str = "auc") -> list[dict]:
    """Validation ``metric`` by boosting round: mean, min and max over the folds still running.

    Fixed column names whatever the number of folds, so experiments plot side by side.
    """
    rounds = max(len(f.curve[metric]) for f in folds)
    rows = []
    for i in _thin(rounds):
        values = [f.curve[metric][i] for f in folds if i < len(f.curve[metric])]
        rows.append(
            {
                "iteration": int(i) + 1,
                f"valid_{metric}_mean": float(np.mean(values)),
                f"valid_{metric}_min": float(np.min(values)),
                f"valid_{metric}_max": float(np.max(values)),
            }
        )
    return rows
