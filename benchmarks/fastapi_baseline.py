"""The baseline the BentoML service is measured against: the same package, bare FastAPI.

    BENTOML_HOME=<store> CREDIT_SCORING_MODEL=<tag> \
        uvicorn benchmarks.fastapi_baseline:app --workers 1 --no-access-log

It loads the package from the BentoML model store through the service's own settings and
start-up check (:func:`credit_scoring.serving.api.startup`), takes the service's request model,
and scores through the same :class:`Scorer` calls (rows, then decisions), in an
``async`` handler like the service's. Nothing else: no decision log, no request id, no
metrics, no access log, no body limit. Whatever the service costs beyond this app is BentoML's
and the service's extras, which is what ``benchmarks.serving`` measures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from credit_scoring.serving.api import ScoreRequest, startup
from credit_scoring.serving.package import Package
from credit_scoring.serving.requests import RequestError
from credit_scoring.serving.scorer import Scorer

# The service's own tag resolution and start-up check, then the same full load as its workers.
_, MODEL, _ = startup(os.environ)
SCORER = Scorer(Package.load(Path(MODEL.stored.path), version=MODEL.stored.tag.version))


app = FastAPI(title="credit-scoring FastAPI baseline")


@app.exception_handler(RequestValidationError)
async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A malformed body is a 400, as BentoML answers, rather than FastAPI's 422."""
    return JSONResponse(
        {"error": "invalid request", "detail": jsonable_encoder(exc.errors())}, status_code=400
    )


@app.post("/predict", response_model=None)
async def predict(request: ScoreRequest) -> dict[str, Any] | JSONResponse:
    """The decision for one applicant, or 400 naming every invalid field."""
    applicants = [(request.features, request.client_id)]
    try:
        rows = SCORER.rows(applicants)
    except RequestError as err:
        return JSONResponse(err.to_dict(), status_code=400)
    # The service's answer without its record: the same fields, a simulation flag as sent.
    return {**SCORER.decisions(rows, [request.client_id])[0], "simulation": request.simulation}
