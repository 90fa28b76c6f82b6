"""From a scoring request to a decision: validate, transform, predict, decide, explain.

The BentoML service and the FastAPI baseline both call this, so they serve the same model
through the same code; the transform is :func:`credit_scoring.features.transform`, the very
function the features stage runs on the whole population.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from credit_scoring.contract.tables import KEY
from credit_scoring.features.transform import columns_from_records, transform
from credit_scoring.modelling.calibration import predict_contributions, predict_pd
from credit_scoring.serving.package import Package
from credit_scoring.serving.reasons import explanation, reasons
from credit_scoring.serving.requests import Location, Problem, RequestError

Applicant = tuple[Mapping[str, Any], int | None]  # raw application fields, optional SK_ID_CURR
# Fewer rows than this score on one thread: starting the others would cost more than it saves.
MANY_ROWS = 64


class Scorer:
    """Scores applicants with a loaded :class:`Package`; stateless between calls.

    ``threads`` is how many threads LightGBM scores a batch on; a request of one applicant or
    a few is scored on one.
    """

    def __init__(self, package: Package, threads: int = 1) -> None:
        self.package = package
        self.threads = threads
        self.threshold = float(package.decision.threshold)
        self.scorecard = package.scorecard
        # "refuse when probability >= threshold" is "refuse when score <= cutoff_score".
        self.cutoff_score = float(package.scorecard.points(self.threshold))
        self.bands = package.decision.bands
        self.version = package.version
        self._reasons = {
            "features": package.schema.features,
            "categorical": package.schema.categorical,
            "typical": package.card["typical"],
            "codes": package.reasons,
        }

    def rows(self, applicants: Sequence[Applicant], loc: Location = ()) -> np.ndarray:
        """The model's feature rows; :class:`RequestError` names every invalid field.

        ``loc`` prefixes the location of a problem (``("applicants",)`` in a batch, where
        each applicant's index follows it).
        """
        batch = bool(loc)
        problems: list[Problem] = []
        given = [client_id for _, client_id in applicants if client_id is not None]
        held = iter(self.package.held(given))
        for i, (features, client_id) in enumerate(applicants):
            where = (*loc, i) if batch else ()
            problems += self.package.inputs.problems(features, loc=(*where, "features"))
            if client_id is not None and not next(held):
                problems.append(
                    Problem(
                        (*where, "client_id"),
                        f"{client_id} is not a known applicant ({KEY}); "
                        "leave client_id out to score without credit history",
                        "unknown_client",
                    )
                )
        if problems:
            raise RequestError(problems)
        columns = columns_from_records(
            [features for features, _ in applicants], self.package.schema
        )
        history = self.package.history([client_id for _, client_id in applicants])
        return transform(columns, history, self.package.schema)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Calibrated probability of default."""
        return predict_pd(
            self.package.booster, self.package.calibration, rows, threads=self._threads(rows)
        )

    def decisions(
        self,
        rows: np.ndarray,
        client_ids: Sequence[int | None],
        contributions: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        """The decision for each applicant: refuse when the probability reaches the threshold.

        Each carries its score in points (:class:`Scorecard`) beside the probability, and the
        threshold's points (the cut-off score) beside the threshold; the decision itself is
        taken on the probability. A refusal carries its reasons, as an adverse-action notice
        must; ``warnings`` name the inputs outside the range the model saw in training.
        ``contributions`` are the rows' own (:meth:`contributions`) when the caller has them;
        else they are computed for the refused rows only.
        """
        probabilities = self.probabilities(rows)
        refused = probabilities >= self.threshold
        given: list[list[dict[str, Any]]] = [[] for _ in client_ids]
        at = np.flatnonzero(refused)
        if at.size:
            refused_parts = (
                self.contributions(rows[at]) if contributions is None else contributions[at]
            )
            for i, contribution in zip(at, refused_parts, strict=True):
                given[i] = reasons(rows[i], contribution, **self._reasons)
        bands = self.bands.bands(probabilities)
        scores = self.scorecard.points(probabilities)
        recommendations = self.package.decision.recommend(probabilities)
        # The raw numeric inputs lead each row: warn of those the model never saw so far out.
        numeric = self.package.schema.numeric
        unseen = self.package.inputs.warnings(numeric, rows[:, : len(numeric)])
        return [
            {
                "client_id": client_id,
                "probability": float(p),
                "score": float(score),
                "prediction": int(no),
                "decision": "refuse" if no else "approve",
                "recommendation": str(recommended),
                "risk_band": str(band),
                "threshold": self.threshold,
                "cutoff_score": self.cutoff_score,
                "model_version": self.version,
                "reasons": why,
                "warnings": warned,
            }
            for p, score, no, recommended, band, client_id, why, warned in zip(
                probabilities,
                scores,
                refused,
                recommendations,
                bands,
                client_ids,
                given,
                unseen,
                strict=True,
            )
        ]

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions in calibrated log-odds (base value last), one row each:
        :func:`~credit_scoring.modelling.calibration.predict_contributions`."""
        return predict_contributions(
            self.package.booster, self.package.calibration, rows, threads=self._threads(rows)
        )

    def _threads(self, rows: np.ndarray) -> int:
        return self.threads if len(rows) >= MANY_ROWS else 1

    def explain(self, row: np.ndarray, contribution: np.ndarray, top_k: int) -> dict[str, Any]:
        """The ``top_k`` contributions of one applicant (a row of :meth:`contributions`).

        Each in log-odds and in points; the base in points plus every contribution in points
        is the applicant's score.
        """
        schema = self.package.schema
        return explanation(
            row,
            contribution,
            points=self.scorecard.contribution_points(contribution),
            features=schema.features,
            categorical=schema.categorical,
            top_k=top_k,
        )

    def application(self, client_id: int) -> dict[str, Any]:
        """The stored application fields of a known applicant of the test population."""
        return self.package.applications.fields(client_id)
