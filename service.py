"""The credit-scoring service: predict, batch, explain, model info and the input schema.

``bentoml serve service:CreditScoring`` serves the package the ``package`` stage saved in the
BentoML model store. Requests carry an applicant's raw application fields (categories as their
strings) and optionally the ``client_id`` (SK_ID_CURR) of a known applicant, whose credit history
aggregates come from the package. Every decision is appended to the decision log.

Settings (environment):
    CREDIT_SCORING_MODEL       model tag in the store (default ``credit_scoring:latest``)
    CREDIT_SCORING_DECISION_LOG  SQLite file of the decision log (default ``decisions.sqlite3``)
    CREDIT_SCORING_MAX_BATCH   most applicants in one predict_batch call (default 2000)
    CREDIT_SCORING_MAX_BODY_MB largest request body in MiB, else HTTP 413 (default 16)
    CREDIT_SCORING_WORKERS     worker processes (default 1)
    CREDIT_SCORING_ACCESS_LOG  BentoML's per-request access log, ``true``/``false`` (default
                               false: it costs a few percent of the throughput, up to 15% on
                               a quiet machine; every scoring request is in the decision log,
                               and the proxy in front usually keeps an access log)
    CREDIT_SCORING_METRICS     Prometheus metrics at /metrics (default true)
    CREDIT_SCORING_TRACE_RATE  share of requests traced by OpenTelemetry (default 0: tracing
                               off, and BentoML's tracing middleware skips every path)
"""

from __future__ import annotations

import gc
import os
import uuid
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.responses import JSONResponse, Response

from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.modelling.threshold import RULE
from credit_scoring.serving.decision_log import DecisionLog
from credit_scoring.serving.package import Package, PackageError, check_package
from credit_scoring.serving.requests import Problem, RequestError
from credit_scoring.serving.scorer import Applicant, Scorer


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, str(default)).strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise SystemExit(f"{name}={value!r}: use true or false")
    return value in ("true", "1")


MODEL_TAG = os.environ.get("CREDIT_SCORING_MODEL", "credit_scoring:latest")
DECISION_LOG = Path(os.environ.get("CREDIT_SCORING_DECISION_LOG", "decisions.sqlite3"))
MAX_BATCH = int(os.environ.get("CREDIT_SCORING_MAX_BATCH", "2000"))
MAX_BODY = int(float(os.environ.get("CREDIT_SCORING_MAX_BODY_MB", "16")) * 2**20)
TRACE_RATE = float(os.environ.get("CREDIT_SCORING_TRACE_RATE", "0"))
EXAMPLE = {
    "AMT_INCOME_TOTAL": 202500.0,
    "AMT_CREDIT": 406597.5,
    "AMT_ANNUITY": 24700.5,
    "EXT_SOURCE_2": 0.263,
    "EXT_SOURCE_3": 0.139,
    "DAYS_BIRTH": -9461,
    "DAYS_EMPLOYED": -637,
    "NAME_INCOME_TYPE": "Working",
    "CODE_GENDER": "M",
}


def checked_schema(model: bentoml.models.BentoModel) -> FeatureSchema:
    """Check the package behind a tag; a missing or inconsistent one stops the server."""
    stored = model.stored
    if stored is None:
        raise SystemExit(
            f"credit-scoring: model {model.tag} is not in the BentoML model store "
            f"({os.environ.get('BENTOML_HOME', '~/bentoml')}); `make serve` serves the package "
            "DVC versions, and `python -m credit_scoring.serving.store` puts it in the store"
        )
    try:
        return check_package(Path(stored.path))
    except PackageError as err:
        raise SystemExit(f"credit-scoring refuses to start: {stored.tag}: {err}") from None


MODEL = bentoml.models.BentoModel(MODEL_TAG)
# At import, from file headers: a bad package stops `bentoml serve` before it starts workers,
# and only the workers load the package itself.
SCHEMA = checked_schema(MODEL)


class ScoreRequest(BaseModel):
    """One applicant: raw application fields, and the id of a known applicant if any."""

    model_config = ConfigDict(extra="forbid")
    features: dict[str, Any] = Field(
        description="Raw application fields by their Home Credit names; absent means missing.",
        examples=[EXAMPLE],
    )
    client_id: StrictInt | None = Field(
        None, description="SK_ID_CURR of a known applicant, whose credit history is used."
    )


class ExplainRequest(ScoreRequest):
    top_k: int = Field(10, ge=1, le=len(SCHEMA.features), description="contributions")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    applicants: list[ScoreRequest] = Field(
        description=f"At most {MAX_BATCH} applicants; an empty list gets an empty result."
    )


class Decision(BaseModel):
    client_id: int | None
    probability: float = Field(description="probability of default")
    prediction: int = Field(description="1 when the model predicts a default")
    decision: str = Field(description="refuse when probability >= threshold, else approve")
    risk_band: str
    threshold: float
    model_version: str


class Scored(Decision):
    request_id: str = Field(description="the key of this decision in the decision log")


class Contribution(BaseModel):
    feature: str
    description: str
    value: float | str | None
    contribution: float = Field(description="TreeSHAP value in log-odds")
    direction: str


class Reason(BaseModel):
    code: str
    text: str


class Explanation(Scored):
    base_value: float = Field(description="the model's expected log-odds")
    log_odds: float = Field(description="base_value + the sum of every contribution")
    contributions: list[Contribution]
    other_contribution: float = Field(description="sum of the contributions not listed")
    reasons: list[Reason] = Field(description="up to four principal reasons, for a refusal")


class ClientRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: StrictInt


class BatchDecisions(BaseModel):
    request_id: str
    model_version: str
    threshold: float
    count: int
    approved: int
    refused: int
    results: list[Decision]


def answer(payload: dict[str, Any]) -> Response:
    """A decision as JSON, serialised once by orjson.

    The shape is the API's declared output model (the OpenAPI page shows it, the tests check
    it); skipping the model's re-validation of what the scorer built is a tenth of a request.
    """
    return Response(orjson.dumps(payload), media_type="application/json")


def bad_request(problems: list[Problem] | RequestError) -> JSONResponse:
    error = problems if isinstance(problems, RequestError) else RequestError(problems)
    return JSONResponse(error.to_dict(), status_code=400)


class BodyLimit:
    """Answer 413 to a body over the limit before reading it (ASGI middleware)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > self.max_bytes:
                response = JSONResponse(
                    {"error": f"request body over the limit of {self.max_bytes} bytes"},
                    status_code=413,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


@bentoml.service(
    name="credit_scoring",
    workers=int(os.environ.get("CREDIT_SCORING_WORKERS", "1")),
    traffic={"timeout": 60},
    logging={"access": {"enabled": _flag("CREDIT_SCORING_ACCESS_LOG", False)}},
    metrics={"enabled": _flag("CREDIT_SCORING_METRICS", True)},
    # With nothing sampled, BentoML would still make unsampled spans for every request.
    tracing={"sample_rate": TRACE_RATE, **({} if TRACE_RATE else {"excluded_urls": [".*"]})},
)
class CreditScoring:
    """Scores loan applicants; loads its package once per worker, logs every decision."""

    model = MODEL

    def __init__(self) -> None:
        self.scorer = Scorer(Package.load(Path(self.model.path), version=self.model.tag.version))
        self.decisions = DecisionLog(DECISION_LOG)
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
        decisions = self.scorer.decisions(
            self.scorer.probabilities(rows), [client_id for _, client_id in applicants]
        )
        return rows, decisions

    @bentoml.api(input_spec=ScoreRequest, output_spec=Scored)
    async def predict(self, features: dict[str, Any], client_id: int | None = None) -> Response:
        """Probability of default, decision and risk band for one applicant."""
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
        if len(applicants) > MAX_BATCH:
            return bad_request(
                [
                    Problem(
                        ("applicants",),
                        f"{len(applicants)} applicants; at most {MAX_BATCH}",
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
            rows, decisions = self._decide(applicants)
        except RequestError as err:
            return bad_request(err)
        decision = decisions[0]
        explained = self.scorer.explain(rows[0], bool(decision["prediction"]), top_k)
        codes = [[r["code"] for r in explained["reasons"]]]
        self.decisions.append(request_id, "explain", applicants, decisions, codes)
        return answer({**decision, "request_id": request_id, **explained})

    @bentoml.api
    def model_info(self) -> dict[str, Any]:
        """Version, data, threshold and costs, quality, importance and cost curve.

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
            "rule": RULE,
            "costs": {"fn": decision.cost_fn, "fp": decision.cost_fp},
            "cost_per_applicant": decision.chosen.cost_per_applicant,
            "policies": {k: v.cost_per_applicant for k, v in decision.policies.items()},
            "risk_bands": decision.bands.to_dict(),
            "metrics": card["metrics"],
            "feature_count": len(package.schema.features),
            "input_count": len(package.schema.inputs),
            "max_batch": MAX_BATCH,
            "importance": card["importance"],
            "cost_curve": card["cost_curve"],
        }

    @bentoml.api
    def schema(self) -> dict[str, Any]:
        """The accepted input fields, most important first, with types and category levels."""
        return {**self.scorer.package.inputs.to_dict(), "max_batch": MAX_BATCH}

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


CreditScoring.add_asgi_middleware(BodyLimit, max_bytes=MAX_BODY)
