"""The credit-scoring service: predict, batch, explain, model info and the input schema.

``bentoml serve service:CreditScoring`` serves the package the ``package`` stage saved in the
BentoML model store. Requests carry an applicant's raw application fields (categories as their
strings) and optionally the ``client_id`` (SK_ID_CURR) of a known applicant, whose credit history
aggregates come from the package. Every decision is appended to the decision log.

The settings are ``CREDIT_SCORING_*`` environment variables, listed in
:mod:`credit_scoring.serving.settings`; the request and response models, the answers and the body
limit are :mod:`credit_scoring.serving.api`.
"""

from __future__ import annotations

import gc
import os
import uuid
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
from starlette.responses import Response

from credit_scoring.modelling.threshold import RULE
from credit_scoring.serving.api import (
    BatchDecisions,
    BodyLimit,
    ClientRequest,
    Explanation,
    Scored,
    ScoreRequest,
    answer,
    bad_request,
    batch_request,
    explain_request,
    startup,
)
from credit_scoring.serving.decision_log import DecisionLog
from credit_scoring.serving.package import Package
from credit_scoring.serving.requests import Problem, RequestError
from credit_scoring.serving.scorer import Applicant, Scorer

# The service's edge, run once as `bentoml serve` imports this file and before it forks any
# worker: the settings from the environment, and a check of the package's file headers. A bad
# setting or package stops the server here with one line; only the workers load the package.
SETTINGS, MODEL, SCHEMA = startup(os.environ)
ExplainRequest = explain_request(len(SCHEMA.features))
BatchRequest = batch_request(SETTINGS.max_batch)


@bentoml.service(
    name="credit_scoring",
    workers=SETTINGS.workers,
    traffic={"timeout": 60},
    logging={"access": {"enabled": SETTINGS.access_log}},
    metrics={"enabled": SETTINGS.metrics},
    # With nothing sampled, BentoML would still make unsampled spans for every request.
    tracing={
        "sample_rate": SETTINGS.trace_rate,
        **({} if SETTINGS.trace_rate else {"excluded_urls": [".*"]}),
    },
)
class CreditScoring:
    """Scores loan applicants; loads its package once per worker, logs every decision."""

    model = MODEL

    def __init__(self) -> None:
        self.scorer = Scorer(Package.load(Path(self.model.path), version=self.model.tag.version))
        self.decisions = DecisionLog(SETTINGS.decision_log)
        self.stored_at = self.model.info.creation_time.isoformat(timespec="seconds")
        # What is loaded by now lives as long as the worker. Out of the collector's sight, it
        # no longer costs a full collection (160 ms over some 200,000 objects) every few
        # thousand requests.
        gc.freeze()

    @bentoml.on_shutdown
    def close(self) -> None:
        self.decisions.close()

    def _decide(
        self, applicants: list[Applicant], batch: bool = False
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Feature rows and decisions; raises RequestError (a 400) before scoring anyone."""
        rows = self.scorer.rows(applicants, loc=("applicants",) if batch else ())
        decisions = self.scorer.decisions(rows, [client_id for _, client_id in applicants])
        return rows, decisions

    @bentoml.api(input_spec=ScoreRequest, output_spec=Scored)
    async def predict(self, features: dict[str, Any], client_id: int | None = None) -> Response:
        """Probability of default, score in points, decision and risk band for one applicant."""
        applicants, request_id = [(features, client_id)], uuid.uuid4().hex
        try:
            _, decisions = self._decide(applicants)
        except RequestError as err:
            return bad_request(err)
        self.decisions.append(request_id, "predict", applicants, decisions)
        return answer({**decisions[0], "request_id": request_id})

    @bentoml.api(input_spec=BatchRequest, output_spec=BatchDecisions)
    def predict_batch(self, applicants: list[ScoreRequest]) -> Response:
        """Many applicants in one call (at most CREDIT_SCORING_MAX_BATCH); results keep order."""
        if len(applicants) > SETTINGS.max_batch:
            return bad_request(
                [
                    Problem(
                        ("applicants",),
                        f"{len(applicants)} applicants; at most {SETTINGS.max_batch}",
                        "too_many",
                    )
                ]
            )
        inputs = [(a.features, a.client_id) for a in applicants]
        request_id, decisions = uuid.uuid4().hex, []
        if inputs:
            try:
                _, decisions = self._decide(inputs, batch=True)
            except RequestError as err:
                return bad_request(err)
            self.decisions.append(request_id, "predict_batch", inputs, decisions)
        refused = sum(d["prediction"] for d in decisions)
        return answer(
            {
                "request_id": request_id,
                "model_version": self.scorer.version,
                "threshold": self.scorer.threshold,
                "cutoff_score": self.scorer.cutoff_score,
                "count": len(decisions),
                "approved": len(decisions) - refused,
                "refused": refused,
                "results": decisions,
            }
        )

    @bentoml.api(input_spec=ExplainRequest, output_spec=Explanation)
    async def explain(
        self, features: dict[str, Any], client_id: int | None = None, top_k: int = 10
    ) -> Response:
        """The decision with its TreeSHAP contributions and, for a refusal, the reasons."""
        applicants, request_id = [(features, client_id)], uuid.uuid4().hex
        try:
            rows = self.scorer.rows(applicants)
        except RequestError as err:
            return bad_request(err)
        contributions = self.scorer.contributions(rows)
        decisions = self.scorer.decisions(rows, [client_id], contributions)
        self.decisions.append(request_id, "explain", applicants, decisions)
        explained = self.scorer.explain(rows[0], contributions[0], top_k)
        return answer({**decisions[0], "request_id": request_id, **explained})

    @bentoml.api
    def model_info(self) -> dict[str, Any]:
        """Version, data, threshold and costs, the score's scale, quality, importance, curve.

        ``stored_at`` is when this package entered this BentoML store; the package itself
        carries no time, so that the same training gives the same version.
        """
        package, card = self.scorer.package, self.scorer.package.card
        decision = package.decision
        return {
            "name": self.model.tag.name,
            "version": package.version,
            "stored_at": self.stored_at,
            "data": card["data"],
            "threshold": decision.threshold,
            "cutoff_score": self.scorer.cutoff_score,
            "rule": RULE,
            "scorecard": package.scorecard.describe(decision.threshold),
            "costs": {"fn": decision.cost_fn, "fp": decision.cost_fp},
            "cost_per_applicant": decision.chosen.cost_per_applicant,
            "policies": {k: v.cost_per_applicant for k, v in decision.policies.items()},
            "risk_bands": decision.bands.to_dict(),
            "metrics": card["metrics"],
            "feature_count": len(package.schema.features),
            "input_count": len(package.schema.inputs),
            "max_batch": SETTINGS.max_batch,
            "importance": card["importance"],
            "cost_curve": card["cost_curve"],
        }

    @bentoml.api
    def schema(self) -> dict[str, Any]:
        """The accepted input fields, most important first, with types and category levels."""
        return {**self.scorer.package.inputs.to_dict(), "max_batch": SETTINGS.max_batch}

    @bentoml.api
    def population(self) -> dict[str, Any]:
        """Key fields' distributions among approved and refused training applicants."""
        return self.scorer.package.card["population"]

    @bentoml.api(input_spec=ClientRequest)
    def applicant(self, client_id: int) -> dict[str, Any]:
        """The stored application fields of a test-population applicant, ready to score."""
        if client_id not in self.scorer.package.applications.index:
            return bad_request(
                [
                    Problem(
                        ("client_id",),
                        f"{client_id} is not in the test population",
                        "unknown_client",
                    )
                ]
            )
        return {"client_id": client_id, "features": self.scorer.application(client_id)}


CreditScoring.add_asgi_middleware(BodyLimit, max_bytes=SETTINGS.max_body_bytes)
