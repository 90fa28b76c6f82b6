"""The credit-scoring service: predict, batch, explain, model info and the input schema.

``bentoml serve service:CreditScoring`` serves the package the ``package`` stage saved in the
BentoML model store. Requests carry an applicant's raw application fields (categories as their
strings) and optionally the ``client_id`` (SK_ID_CURR) of a known applicant, whose credit history
aggregates come from the package. No decision leaves before its record is committed to the
decision record (:mod:`credit_scoring.serving.records`); a request whose record fails gets 503
and no decision. A scored application is a recommendation (approve, refuse or refer); a credit
officer's final decision on it is recorded through ``/decide``.

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

from credit_scoring.modelling.decision import RULE
from credit_scoring.serving.api import (
    BatchDecisions,
    ClientRequest,
    Explanation,
    FinalDecision,
    FinalDecisionRequest,
    Scored,
    ScoreRequest,
    answer,
    batch_request,
    explain_request,
    refusal,
    startup,
    unrecorded,
)
from credit_scoring.serving.middleware import ApiKey, BodyLimit, Document, JsonOnly
from credit_scoring.serving.openapi import document
from credit_scoring.serving.package import Package, read_inputs, read_reasons
from credit_scoring.serving.records import (
    Provenance,
    RecordError,
    RecordLog,
    decision_records,
    final_record,
    now,
)
from credit_scoring.serving.requests import Problem, RequestError
from credit_scoring.serving.scorer import Applicant, Scorer
from credit_scoring.serving.settings import CONTAINER_RECORD

SERVING_LOCK = "requirements-serving.lock"  # the serving runtime, pinned with hashes
UV_VERSION = "0.13.8"  # requirements.lock's (a test keeps them equal)


class _SlimImage(bentoml.images.Image):
    """BentoML's image, less the build toolchain its Debian recipe starts with.

    BentoML's "debian" distro installs build-essential and git (some 300 MB) before anything else;
    every package of the serving lock ships as a wheel, so nothing here is compiled.
    """

    def __attrs_post_init__(self) -> None:
        """Keep the base image and commands as given (no default install command)."""


# What `bentoml build` puts in the image: the slim Python base, the OpenMP runtime LightGBM's
# wheel loads, and a virtual environment that holds requirements-serving.lock and nothing else
# (`uv pip sync` installs exactly the lock, every wheel checked against its hash).
IMAGE = (
    _SlimImage(base_image="python:3.11-slim", python_version="3.11", lock_python_packages=False)
    .run(
        "apt-get update && apt-get install -q -y --no-install-recommends libgomp1"
        " && apt-get clean && rm -rf /var/lib/apt/lists/*"
    )
    .run(f"pip install --no-cache-dir uv=={UV_VERSION}")
    .build_include(SERVING_LOCK)
    .requirements_file(SERVING_LOCK)
    .run(f"uv pip sync --require-hashes src/{SERVING_LOCK}")
    .run(f"install -d -o bentoml -g bentoml -m 0700 {CONTAINER_RECORD.parent}")
)

# The service's edge, run once as `bentoml serve` imports this file and before it forks any
# worker: the settings from the environment, and a check of the package's file headers. A bad
# setting or package stops the server here with one line; only the workers load the package.
SETTINGS, MODEL, SCHEMA = startup(os.environ)
ExplainRequest = explain_request(len(SCHEMA.features))
BatchRequest = batch_request(SETTINGS.max_batch)


@bentoml.service(
    name="credit_scoring",
    image=IMAGE,
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
    """Scores loan applicants; loads its package once per worker, records every decision."""

    model = MODEL

    def __init__(self) -> None:
        package = Package.load(Path(self.model.path), version=self.model.tag.version)
        self.scorer = Scorer(package, SETTINGS.batch_threads(os.cpu_count() or 1))
        self.provenance = Provenance(package.version, package.files, package.reasons.version)
        self.override_reasons = dict(package.reasons.overrides)  # code: text, for /decide
        self.records = RecordLog(
            SETTINGS.decision_log, SETTINGS.record_timeout, SETTINGS.record_max_bytes
        )
        self.stored_at = self.model.info.creation_time.isoformat(timespec="seconds")
        # What is loaded by now lives as long as the worker. Out of the collector's sight, it
        # no longer costs a full collection (160 ms over some 200,000 objects) every few
        # thousand requests.
        gc.freeze()

    @bentoml.on_shutdown
    def close(self) -> None:
        self.records.close()

    def _records(
        self,
        request_id: str,
        endpoint: str,
        applicants: list[Applicant],
        decisions: list[dict[str, Any]],
        simulation: bool,
    ) -> list[dict[str, Any]]:
        """The request's records, for the next group commit."""
        return decision_records(
            request_id=request_id,
            endpoint=endpoint,
            simulation=simulation,
            applicants=applicants,
            decisions=decisions,
            provenance=self.provenance,
            time=now(),
        )

    def _decide(
        self, applicants: list[Applicant], batch: bool = False
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Feature rows and decisions; raises RequestError (a 400) before scoring anyone."""
        rows = self.scorer.rows(applicants, loc=("applicants",) if batch else ())
        decisions = self.scorer.decisions(rows, [client_id for _, client_id in applicants])
        return rows, decisions

    # One applicant scores in a millisecond or two: on the event loop, /predict saves the hop to
    # a thread (a third of the throughput at 16 connections). The batch and /explain, which can
    # take far longer, run in BentoML's thread pool (sync endpoints), off the loop, so that the
    # probes answer meanwhile.
    @bentoml.api(input_spec=ScoreRequest, output_spec=Scored)
    async def predict(
        self, features: dict[str, Any], client_id: int | None = None, simulation: bool = False
    ) -> Response:
        """Probability of default, score in points, recommendation and grade for one applicant."""
        applicants, request_id = [(features, client_id)], uuid.uuid4().hex
        try:
            _, decisions = self._decide(applicants)
        except RequestError as err:
            return refusal(err)
        try:
            await self.records.commit_async(
                self._records(request_id, "predict", applicants, decisions, simulation)
            )
        except RecordError as err:
            return unrecorded(request_id, err)
        return answer({**decisions[0], "request_id": request_id, "simulation": simulation})

    @bentoml.api(input_spec=BatchRequest, output_spec=BatchDecisions)
    def predict_batch(self, applicants: list[ScoreRequest], simulation: bool = False) -> Response:
        """Many applicants in one call (at most CREDIT_SCORING_MAX_BATCH); results keep order."""
        if len(applicants) > SETTINGS.max_batch:
            return refusal(
                [
                    Problem(
                        ("applicants",),
                        f"{len(applicants)} applicants; at most {SETTINGS.max_batch}",
                        "too_many",
                    )
                ]
            )
        inputs = [(a.features, a.client_id) for a in applicants]
        simulated = simulation or any(a.simulation for a in applicants)  # one marked: all are
        request_id, decisions = uuid.uuid4().hex, []
        if inputs:
            try:
                _, decisions = self._decide(inputs, batch=True)
            except RequestError as err:
                return refusal(err)
            try:
                self.records.commit(
                    self._records(request_id, "predict_batch", inputs, decisions, simulated)
                )
            except RecordError as err:
                return unrecorded(request_id, err)
        refused = sum(d["prediction"] for d in decisions)
        return answer(
            {
                "request_id": request_id,
                "simulation": bool(inputs) and simulated,
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
    def explain(
        self,
        features: dict[str, Any],
        client_id: int | None = None,
        top_k: int = 10,
        simulation: bool = False,
    ) -> Response:
        """The recommendation with its TreeSHAP contributions and, for a refusal, the reasons."""
        applicants, request_id = [(features, client_id)], uuid.uuid4().hex
        try:
            rows = self.scorer.rows(applicants)
        except RequestError as err:
            return refusal(err)
        contributions = self.scorer.contributions(rows)
        decisions = self.scorer.decisions(rows, [client_id], contributions)
        try:
            self.records.commit(
                self._records(request_id, "explain", applicants, decisions, simulation)
            )
        except RecordError as err:
            return unrecorded(request_id, err)
        explained = self.scorer.explain(rows[0], contributions[0], top_k)
        return answer(
            {**decisions[0], "request_id": request_id, "simulation": simulation, **explained}
        )

    @bentoml.api(input_spec=FinalDecisionRequest, output_spec=FinalDecision)
    def decide(
        self,
        request_id: str,
        officer_id: str,
        decision: str,
        reason: str,
        item: int = 0,
        note: str = "",
    ) -> Response:
        """A credit officer's final decision on a recorded recommendation, kept beside it."""
        reasons = self.override_reasons
        if reason not in reasons:
            return refusal(
                [Problem(("reason",), f"{reason!r} is not one of {list(reasons)}", "unknown")]
            )
        recommended = self.records.find(request_id, item)
        if recommended is None:
            return refusal(
                [
                    Problem(
                        ("request_id",),
                        f"no recorded recommendation {request_id} (item {item})",
                        "not_found",
                    )
                ]
            )
        if recommended["kind"] == "simulation":
            return refusal(
                [Problem(("request_id",), "a simulation is not a decision to take", "simulation")]
            )
        final = final_record(
            recommended,
            request_id=uuid.uuid4().hex,
            officer_id=officer_id,
            decision=decision,
            reason=reason,
            reason_text=reasons[reason],
            note=note,
            time=now(),
        )
        try:
            self.records.commit([final])
        except RecordError as err:
            return unrecorded(final["request_id"], err)
        return answer({k: v for k, v in final.items() if k not in ("kind", "item")})

    @bentoml.api
    def model_info(self) -> dict[str, Any]:
        """Version, data, which applicants the model was fitted on, threshold and costs, the
        score's scale, quality, importance, curve.

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
            "fitting": card["fitting"],
            "threshold": decision.threshold,
            "cutoff_score": self.scorer.cutoff_score,
            "rule": RULE,
            "scorecard": package.scorecard.describe(decision.threshold),
            "costs": {"fn": decision.cost_fn, "fp": decision.cost_fp},
            "cost_per_applicant": decision.chosen.cost_per_applicant,
            "policies": {k: v.cost_per_applicant for k, v in decision.policies.items()},
            "risk_bands": decision.bands.to_dict(),
            "refer": decision.refer.to_dict(),
            "override_reasons": [
                {"code": code, "text": text} for code, text in package.reasons.overrides
            ],
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
        if client_id not in self.scorer.package.applications:
            return refusal(
                [
                    Problem(
                        ("client_id",),
                        f"{client_id} is not in the test population",
                        "unknown_client",
                    )
                ]
            )
        return {"client_id": client_id, "features": self.scorer.application(client_id)}


def openapi_document() -> dict[str, Any]:
    """``/docs.json``: every answer of every endpoint, and the package's own request fields."""
    folder = Path(MODEL.stored.path)
    return document(
        CreditScoring.openapi_spec.asdict(),
        CreditScoring.apis,
        read_inputs(folder),
        [code for code, _ in read_reasons(folder).overrides],
        version=MODEL.tag.version,
        keyed=SETTINGS.api_key is not None,
    )


# The first added is the outermost: a request meets the key, then the media type, then the size.
if SETTINGS.api_key is not None:
    CreditScoring.add_asgi_middleware(ApiKey, key=SETTINGS.api_key)
CreditScoring.add_asgi_middleware(JsonOnly)
CreditScoring.add_asgi_middleware(BodyLimit, max_bytes=SETTINGS.max_body_bytes)
CreditScoring.add_asgi_middleware(Document, build=openapi_document)
