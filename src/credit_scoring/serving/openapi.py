"""The service's OpenAPI document, built from the models that validate and shape each answer.

BentoML's own document declares a string ``detail`` in errors we send as a list, lists 500s
we never send and leaves out our 401, 404, 413, 415 and 503, and types a request's
``features`` as any object. This one (OpenAPI 3.1, whose schemas are JSON Schema 2020-12, as
pydantic writes them) states every answer each endpoint gives, and the ``features`` the
validator accepts (:meth:`~credit_scoring.serving.requests.RequestSchema.json_schema`):
ranges, levels, required fields, nothing else. BentoML's probes (``/livez``, ``/readyz``...)
are kept as it describes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from credit_scoring.serving.api import Error, Unrecorded
from credit_scoring.serving.middleware import KEY_HEADER, OPEN_PATHS
from credit_scoring.serving.requests import RequestSchema

REF = "#/components/schemas/{model}"
FEATURES = "Features"

# Beside 400 (a malformed body), 413 and 415, which every endpoint may answer.
NOT_FOUND = 404  # an applicant (client_id) or a recommendation (request_id) we do not hold
CONFLICT = 409  # a final decision asked of a simulation
UNRECORDED = 503  # the record could not be written, so no decision was made
ANSWERS: Mapping[str, tuple[int, ...]] = {
    "predict": (NOT_FOUND, UNRECORDED),
    "predict_batch": (NOT_FOUND, UNRECORDED),
    "explain": (NOT_FOUND, UNRECORDED),
    "decide": (NOT_FOUND, CONFLICT, UNRECORDED),
    "applicant": (NOT_FOUND,),
}
WHY = {
    400: "The body is not a JSON object of this request's shape, or a field breaks its "
    "limits: every problem is named, with where it is.",
    401: f"The API key is missing or wrong: send it in the {KEY_HEADER} header.",
    404: "An applicant (client_id) or a recommendation (request_id) the service does not hold.",
    409: "The recommendation is a simulation: there is no decision to take on it.",
    413: "The body is over the service's limit (CREDIT_SCORING_MAX_BODY_MB).",
    415: "The body is not declared as application/json.",
    503: "The decision could not be recorded, so none was made: retry after Retry-After seconds.",
}


class _Components:
    """The document's schemas: each model's JSON Schema once, its nested models beside it."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], name: str | None = None) -> dict[str, str]:
        name = name or model.__name__
        if name not in self.schemas:
            schema = model.model_json_schema(ref_template=REF)
            self.schemas.update(schema.pop("$defs", {}))
            self.schemas[name] = schema
        return {"$ref": REF.format(model=name)}


def _json(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _features_by_ref(schemas: dict[str, Any], names: Iterable[str]) -> None:
    """Point the ``features`` property of the named request schemas at :data:`FEATURES`."""
    for name in names:
        properties = schemas[name].get("properties", {})
        if "features" in properties:
            description = properties["features"].get("description", "")
            properties["features"] = {"$ref": REF.format(model=FEATURES)}
            if description:
                properties["features"]["description"] = description


def document(
    bentoml_spec: Mapping[str, Any],
    apis: Mapping[str, Any],
    inputs: RequestSchema,
    override_reasons: Iterable[str],
    version: str,
    keyed: bool,
) -> dict[str, Any]:
    """The document for a service whose endpoints are ``apis`` (BentoML's API methods).

    ``bentoml_spec`` is what BentoML would serve (its title and probes are kept); ``inputs``
    the package's request schema; ``override_reasons`` the codes ``/decide`` takes;
    ``version`` the package's; ``keyed`` that every path but the probes and metrics asks
    for the API key.
    """
    components = _Components()
    components.schemas[FEATURES] = inputs.json_schema()
    errors = {"Error": components.ref(Error), "Unrecorded": components.ref(Unrecorded)}
    paths = {path: item for path, item in bentoml_spec["paths"].items() if path in OPEN_PATHS}
    requests = []
    for name, api in apis.items():
        request = f"{name}_request"
        requests.append(request)
        body = components.ref(api.input_spec, request)
        ok = components.ref(api.output_spec, f"{name}_response")
        responses = {"200": _json(ok, "Success")}
        for status in sorted({400, 413, 415, *ANSWERS.get(name, ()), *((401,) if keyed else ())}):
            schema = errors["Unrecorded" if status == UNRECORDED else "Error"]
            responses[str(status)] = _json(schema, WHY[status])
        if UNRECORDED in ANSWERS.get(name, ()):
            responses[str(UNRECORDED)]["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
            }
        paths[api.route] = {
            "post": {
                "operationId": name,
                "description": api.doc or "",
                "requestBody": {
                    # An endpoint that takes no field takes no body too.
                    "required": bool(api.input_spec.model_fields),
                    "content": {"application/json": {"schema": body}},
                },
                "responses": responses,
                **({"security": [{"apiKey": []}]} if keyed else {}),
            }
        }
    _features_by_ref(components.schemas, [*requests, "ScoreRequest"])
    decide = components.schemas["decide_request"]["properties"]
    decide["reason"] = {**decide["reason"], "enum": list(override_reasons)}
    out: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {**bentoml_spec["info"], "version": version},
        "servers": bentoml_spec.get("servers", [{"url": "."}]),
        "paths": paths,
        "components": {"schemas": components.schemas},
    }
    if keyed:
        out["components"]["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": KEY_HEADER}
        }
    return out
