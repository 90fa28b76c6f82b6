"""The model review: every section of the validation report, from scored applicants.

The hold-out is the subject (the served model never saw it); the out-of-fold scores stand beside
it where a figure has both, and ``application_test`` is the population the stability section
compares the hold-out with. The layout is :mod:`credit_scoring.validation.report`'s.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from credit_scoring.contract.tables import TARGET
from credit_scoring.modelling.cross_validation import PROBABILITY
from credit_scoring.modelling.decision import ThresholdDecision
from credit_scoring.validation.age import age_check
from credit_scoring.validation.discrimination import discrimination
from credit_scoring.validation.fairness import age_bands, group_table
from credit_scoring.validation.rank_ordering import band_table, deciles, inversions, jeffreys_test
from credit_scoring.validation.report import records
from credit_scoring.validation.stability import characteristic_stability, psi, reading

AGE_BAND = "AGE_BAND"  # the attribute name of the age bands in the fairness table


@dataclass(frozen=True)
class ReviewSettings:
    """The ``validate`` parameters that shape the figures (not the paths)."""

    bootstrap: int
    seed: int
    level: float
    psi_bins: int
    top_features: int
    attributes: Sequence[str]
    age_edges: Sequence[float]
    age_features: Sequence[str]
    min_applicants: int

    @classmethod
    def from_params(cls, cfg: Mapping[str, Any]) -> ReviewSettings:
        return cls(
            bootstrap=cfg["bootstrap"],
            seed=cfg["seed"],
            level=cfg["level"],
            psi_bins=cfg["psi_bins"],
            top_features=cfg["top_features"],
            attributes=tuple(cfg["attributes"]),
            age_edges=tuple(cfg["age_edges"]),
            age_features=tuple(cfg["age_features"]),
            min_applicants=cfg["min_applicants"],
        )


def review(
    *,
    oof: pd.DataFrame,
    holdout: pd.DataFrame,
    attributes: pd.DataFrame,
    test: pd.DataFrame,
    contributions: np.ndarray,
    features: Sequence[str],
    categorical: Sequence[str],
    strongest: Sequence[str],
    decision: ThresholdDecision,
    excluded: Sequence[str],
    summary: Mapping[str, Any],
    settings: ReviewSettings,
) -> dict[str, Any]:
    """The validation report (a JSON-like mapping) of the served model.

    Args:
        oof: TARGET and the calibrated out-of-fold PROBABILITY of the development applicants.
        holdout: the hold-out applicants: TARGET, the served model's PROBABILITY and their
            features.
        attributes: the same applicants' fair-lending attributes as the application states
            them (raw, whether or not the model reads them) and DAYS_BIRTH, row for row.
        test: application_test's applicants: PROBABILITY and their features.
        contributions: the hold-out's TreeSHAP contributions, in ``features`` order.
        features: the model's features; ``categorical`` those among them that are codes.
        strongest: the features by importance, strongest first (for the characteristics).
        decision: the threshold and risk grades the service applies.
        excluded: the prohibited bases kept out of the model.
        summary: what identifies the model (version, threshold, cut-off score).
        settings: the stage's parameters.
    """
    y, p = holdout[TARGET].to_numpy(), holdout[PROBABILITY].to_numpy()
    boot = {"n_boot": settings.bootstrap, "seed": settings.seed}
    decile, order = deciles(p)
    ranked = band_table(y, p, decile, order)
    graded = jeffreys_test(
        band_table(y, p, decision.bands.bands(p), decision.bands.labels), settings.level
    )
    groups = {name: attributes[name].to_numpy() for name in settings.attributes}
    groups[AGE_BAND] = age_bands(attributes["DAYS_BIRTH"].to_numpy(), settings.age_edges)
    top = list(strongest[: settings.top_features])
    return {
        "summary": {
            **summary,
            "data_sets": {"oof": len(oof), "holdout": len(holdout), "test": len(test)},
        },
        "discrimination": {
            "level": settings.level,
            "holdout": discrimination(y, p, **boot),
            "oof": discrimination(oof[TARGET].to_numpy(), oof[PROBABILITY].to_numpy(), **boot),
        },
        "deciles": {
            "data_set": "holdout",
            "table": records(ranked),
            "inversions": [list(pair) for pair in inversions(ranked)],
        },
        "bands": {
            "data_set": "holdout",
            "level": settings.level,
            "table": records(graded),
            "inversions": [list(pair) for pair in inversions(graded)],
        },
        "stability": stability_section(
            holdout,
            test,
            names=("holdout", "test"),
            strongest=top,
            categorical=categorical,
            bins=settings.psi_bins,
        ),
        "fairness": {
            "min_applicants": settings.min_applicants,
            "table": records(
                group_table(
                    y, p >= decision.threshold, groups, min_applicants=settings.min_applicants
                )
            ),
        },
        "age": age_check(
            contributions, features, holdout["DAYS_BIRTH"].to_numpy(), settings.age_features
        ),
        "exclusions": {"excluded": list(excluded)},
    }


def stability_section(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    names: tuple[str, str],
    strongest: Sequence[str],
    categorical: Collection[str],
    bins: int,
) -> dict[str, Any]:
    """The report's stability section: the PSI of the score and of the strongest features.

    The validate stage compares the hold-out with application_test; the batch-monitoring
    command, the hold-out with a new batch. Both frames hold PROBABILITY and the features;
    ``names`` says which populations they are.
    """
    score = psi(reference[PROBABILITY], current[PROBABILITY], bins=bins, column=PROBABILITY)
    return {
        "reference": names[0],
        "current": names[1],
        "score_psi": score,
        "score_reading": reading(score),
        "characteristics": records(
            characteristic_stability(reference, current, strongest, categorical=categorical)
        ),
    }


def headline(report: Mapping[str, Any]) -> dict[str, float]:
    """The figures ``dvc exp show`` compares: discrimination, stability, fair lending, age."""
    held = report["discrimination"]["holdout"]
    ratios = [
        row["adverse_impact_ratio"]
        for row in report["fairness"]["table"]
        if not row["small"] and row["adverse_impact_ratio"] is not None
    ]
    return {
        "gini": held["gini"],
        "ks": held["ks"],
        "score_psi": report["stability"]["score_psi"],
        "min_adverse_impact_ratio": min(ratios),
        "fairness_flags": sum(bool(row["flagged"]) for row in report["fairness"]["table"]),
        "band_test_failures": sum(not row["passes"] for row in report["bands"]["table"]),
        "age_62_toward_refusal": report["age"]["share_toward_refusal"],
    }


def decile_plot(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The decile table as DVClive plot points: the observed against the predicted rate."""
    return [
        {"decile": int(row["band"]), "default_rate": row["default_rate"], "mean_pd": row["mean_pd"]}
        for row in report["deciles"]["table"]
        if row["applicants"]
    ]


def approval_plot(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fairness table as DVClive plot points: each group's approval rate."""
    return [
        {"group": f"{row['attribute']} = {row['group']}", "approval_rate": row["approval_rate"]}
        for row in report["fairness"]["table"]
    ]
