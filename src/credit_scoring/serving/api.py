"""The service's HTTP surface: request, response and error models, answers, start-up.

``service.py`` declares the BentoML service from these parts. Nothing here runs at import: the
two request models whose bounds come from the settings and the package are made by
:func:`explain_request` and :func:`batch_request`, and :func:`startup` reads the store only
when the service calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import bentoml
import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from credit_scoring.features.feature_schema import FeatureSchema
from credit_scoring.serving.package import PackageError, check_stored
from credit_scoring.serving.records import RecordError, check_writable
from credit_scoring.serving.requests import MAX_INTEGER, Problem, RequestError
from credit_scoring.serving.settings import Settings, SettingsError

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


def _whole(value: Any) -> Any:
    """A whole number sent as 3.0 is the integer 3, as JSON Schema's "integer" says; a string
    or a boolean stays what it is, for the strict check to refuse."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def whole_number(low: int, high: int) -> Any:
    """An integer in [low, high] that may arrive as 3.0; the bounds come before the conversion,
    so that pydantic states them in the JSON Schema too."""
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(_whole)]


ClientId = whole_number(0, MAX_INTEGER)


class ScoreRequest(BaseModel):
    """One applicant: raw application fields, and the id of a known applicant if any."""

    model_config = ConfigDict(extra="forbid", strict=True)
    features: dict[str, Any] = Field(
        description="Raw application fields by their Home Credit names; absent means missing.",
        examples=[EXAMPLE],
    )
    client_id: ClientId | None = Field(
        None, description="SK_ID_CURR of a known applicant, whose credit history is used."
    )
    simulation: bool = Field(
        False,
        description="a what-if: scored and recorded as a simulation, never counted as a decision",
    )


def explain_request(features: int) -> type[ScoreRequest]:
    """The explain request; ``top_k`` is at most the package's feature count, in the OpenAPI too."""

    class ExplainRequest(ScoreRequest):
        top_k: whole_number(1, features) = Field(10, description="contributions")

    return ExplainRequest


def batch_request(max_batch: int) -> type[BaseModel]:
    """The batch request; its description states the configured limit (checked in the handler)."""

    class BatchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        applicants: list[ScoreRequest] = Field(
            description=f"At most {max_batch} applicants; an empty list gets an empty result."
        )
        simulation: bool = Field(
            False, description="every applicant a what-if: recorded as simulations"
        )

    return BatchRequest


class Reason(BaseModel):
    code: str = Field(description="the reason family's code (reason_codes.yaml)")
    feature: str = Field(description="the family's feature that pushed most toward default")
    contribution: float = Field(description="the family's summed contribution, in log-odds")
    text: str


SCORE = (
    "the score in points (the package's scorecard): higher is safer; "
    "offset + factor * ln((1 - probability) / probability)"
)
CUTOFF = "the threshold in points: refuse when score <= cutoff_score (as probability >= threshold)"


class Decision(BaseModel):
    client_id: int | None
    probability: float = Field(description="probability of default")
    score: float = Field(description=SCORE)
    prediction: int = Field(description="1 when the model predicts a default")
    decision: str = Field(description="refuse when probability >= threshold, else approve")
    recommendation: str = Field(
        description="approve, refuse, or refer to a credit officer (the odds lie within the "
        "package's refer band around the threshold): the model's recommendation, which an "
        "officer's final decision (/decide) may overrule"
    )
    risk_band: str
    threshold: float
    cutoff_score: float = Field(description=CUTOFF)
    model_version: str
    reasons: list[Reason] = Field(
        description="for a refusal, up to four principal reasons (reason families), strongest first"
    )
    warnings: list[str] = Field(description="inputs outside the range the model saw in training")


class Scored(Decision):
    request_id: str = Field(description="the key of this decision in the decision record")
    simulation: bool = Field(description="a what-if, recorded as a simulation, not a decision")


class Contribution(BaseModel):
    feature: str
    description: str
    value: float | str | None
    contribution: float = Field(description="TreeSHAP value in log-odds")
    points: float = Field(description="the contribution in points: -factor * contribution")
    direction: str


class Explanation(Scored):
    base_value: float = Field(description="the model's expected log-odds")
    base_points: float = Field(
        description="the base in points (offset - factor * base_value): base_points + the "
        "points of every contribution is the score"
    )
    log_odds: float = Field(description="base_value + the sum of every contribution")
    contributions: list[Contribution]
    other_contribution: float = Field(description="sum of the contributions not listed")
    other_points: float = Field(description="sum of the points of the contributions not listed")


class ClientRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    client_id: ClientId


class FinalDecisionRequest(BaseModel):
    """A credit officer's final decision on a recorded recommendation."""

    model_config = ConfigDict(extra="forbid", strict=True)
    request_id: str = Field(
        min_length=32, max_length=32, description="the recommendation's request_id"
    )
    item: whole_number(0, MAX_INTEGER) = Field(
        0, description="the applicant's index in a batch (0 otherwise)"
    )
    officer_id: str = Field(min_length=1, max_length=64, description="who decides")
    decision: Literal["approve", "refuse"]
    reason: str = Field(description="a code of the package's override reasons (/model_info)")
    note: str = Field("", max_length=2000, description="free text, kept in the record")


class FinalDecision(BaseModel):
    request_id: str = Field(description="the key of this final decision in the record")
    refers_to: dict[str, Any] = Field(description="the recommendation's request_id and item")
    officer_id: str
    decision: str = Field(description="the officer's final decision")
    recommendation: str = Field(description="the model's recommendation it answers")
    overridden: bool = Field(description="the officer departed from the model's recommendation")
    reason: str
    reason_text: str
    note: str
    time: str
    model_version: str
    risk_band: str
    probability: float = Field(description="the recommendation's probability of default")
    score: float = Field(description="the recommendation's score in points")


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="where: the field's path in the body, or a header")
    msg: str = Field(description="what is wrong with it")
    type: str = Field(description="the kind of problem, for a program to act on")


class Error(BaseModel):
    """Every error the service answers (4xx, and 503 with the request's id)."""

    error: str = Field(description="the first problem in one line, and how many more")
    detail: list[ErrorDetail] = Field(description="every problem, one each")


class Unrecorded(Error):
    request_id: str = Field(description="the request's id, for the operator's log")


class BatchDecisions(BaseModel):
    request_id: str
    simulation: bool
    model_version: str
    threshold: float
    cutoff_score: float = Field(description=CUTOFF)
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


def refusal(problems: list[Problem] | RequestError, status: int | None = None) -> JSONResponse:
    """An error answer naming every problem, with ``status`` or else the problems' own
    (:attr:`RequestError.status`: 404 for what we do not hold, else 400)."""
    error = problems if isinstance(problems, RequestError) else RequestError(problems)
    return JSONResponse(error.to_dict(), status_code=status or error.status)


def unrecorded(request_id: str, err: Exception) -> JSONResponse:
    """503: the decision could not be recorded, so none was made; the client may retry."""
    body = RequestError([Problem(("record",), f"no decision: {err}; retry later", "unrecorded")])
    return JSONResponse(
        {**body.to_dict(), "request_id": request_id},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def checked_schema(model: bentoml.models.BentoModel, home: str) -> FeatureSchema:
    """Check the package behind a tag; a missing or inconsistent one stops the server.

    ``home`` is the BentoML home the refusal names, where the store was looked for.
    """
    stored = model.stored
    if stored is None:
        raise SystemExit(
            f"credit-scoring: model {model.tag} is not in the BentoML model store "
            f"({home}); `make serve` serves the package DVC versions, and "
            "`python -m credit_scoring.serving.store` puts it in the store"
        )
    try:
        return check_stored(Path(stored.path), stored.tag.version)
    except PackageError as err:
        raise SystemExit(f"credit-scoring refuses to start: {stored.tag}: {err}") from None


def startup(
    environ: Mapping[str, str],
) -> tuple[Settings, bentoml.models.BentoModel, FeatureSchema]:
    """The settings, the model reference and its feature schema, or one line and an exit.

    Reads file headers only, so that a bad setting, a record store it cannot write or a bad
    package stops `bentoml serve` before it forks its workers, and only the workers load the
    package itself.
    """
    try:
        settings = Settings.from_env(environ)
        check_writable(settings.decision_log)
    except (SettingsError, RecordError) as err:
        raise SystemExit(f"credit-scoring refuses to start: {err}") from None
    model = bentoml.models.BentoModel(settings.model_tag)
    return settings, model, checked_schema(model, environ.get("BENTOML_HOME", "~/bentoml"))
