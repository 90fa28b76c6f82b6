"""The scoring service's JSON API over HTTP, and the failures the screen shows as messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from credit_scoring.serving.middleware import KEY_HEADER


class ShownError(Exception):
    """A failure whose message is written for the screen: shown as it is, never a traceback."""

    title = "Check the input"

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        if title:
            self.title = title


class ServiceError(ShownError):
    """The service could not be reached, or answered with an error."""

    title = "The scoring service is not available"


REFUSED = "The service refused the request"


class ServiceClient:
    """The service's JSON API over HTTP; any failure becomes one readable :class:`ServiceError`."""

    def __init__(self, url: str, timeout: float = 30.0, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={KEY_HEADER: api_key} if api_key else {},
        )

    def call(self, endpoint: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST a JSON body to an endpoint; the decoded answer, or a :class:`ServiceError`."""
        try:
            response = self._http.post(f"/{endpoint}", json=dict(body or {}))
        except httpx.ConnectError:
            raise ServiceError(
                f"The scoring service at {self.url} is not reachable: is it running? Start it "
                "with `bentoml serve service:CreditScoring`, or point CREDIT_SCORING_URL at it."
            ) from None
        except httpx.TimeoutException:
            raise ServiceError(
                f"The scoring service at {self.url} did not answer /{endpoint} within "
                f"{self.timeout:g} s; it may be overloaded. Try again in a moment."
            ) from None
        except httpx.HTTPError as err:
            raise ServiceError(
                f"Talking to the scoring service at {self.url} failed: {err}"
            ) from None
        if response.status_code >= 400:
            raise self._error(response, endpoint)
        try:
            return response.json()
        except ValueError:
            raise ServiceError(
                f"The service at {self.url} answered /{endpoint} with something other than "
                "JSON: is CREDIT_SCORING_URL pointing at the credit-scoring service?"
            ) from None

    def _error(self, response: httpx.Response, endpoint: str) -> ServiceError:
        """The service's own words for a failed call, field by field where it names them."""
        status = response.status_code
        if status == 401:
            return ServiceError(
                f"The scoring service at {self.url} asks for an API key and refused the "
                "screen's (HTTP 401): start the screen with CREDIT_SCORING_API_KEY (or "
                "CREDIT_SCORING_API_KEY_FILE) set to the service's key."
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            problems = [
                f"- `{'.'.join(str(p) for p in item.get('loc', ()))}`: {item.get('msg', '')}"
                for item in body.get("detail") or ()
                if isinstance(item, dict)
            ]
            # The service names each field; pydantic's own headline names a class instead.
            return ServiceError("\n".join(problems) or str(body["error"]), title=REFUSED)
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        if status == 404:
            return ServiceError(
                f"The service at {self.url} has no /{endpoint} (HTTP 404): is "
                "CREDIT_SCORING_URL pointing at the credit-scoring service?"
            )
        if status == 503:
            return ServiceError(f"The scoring service is busy (HTTP 503); try again. {text}")
        return ServiceError(f"The scoring service failed on /{endpoint} (HTTP {status}): {text}")

    def schema(self) -> dict[str, Any]:
        """The accepted input fields, most important first: what the form is built from."""
        return self.call("schema")

    def model_info(self) -> dict[str, Any]:
        """The model card: version, quality, threshold, costs, risk bands, importance."""
        return self.call("model_info")

    def population(self) -> dict[str, Any]:
        """Key fields' distributions among approved and refused training applicants."""
        return self.call("population")

    def applicant(self, client_id: int) -> dict[str, Any]:
        """A test-population applicant's stored application fields."""
        return self.call("applicant", {"client_id": client_id})

    def predict(
        self, features: Mapping[str, Any], client_id: int | None, simulation: bool = False
    ) -> dict[str, Any]:
        """The decision alone (the what-if's starting point)."""
        body = {"features": dict(features), "client_id": client_id, "simulation": simulation}
        return self.call("predict", body)

    def explain(
        self,
        features: Mapping[str, Any],
        client_id: int | None,
        top_k: int,
        simulation: bool = False,
    ) -> dict[str, Any]:
        """The decision with its contributions and, for a refusal, the reasons; a what-if is
        a ``simulation``, recorded as one and never counted as a decision."""
        body = {
            "features": dict(features),
            "client_id": client_id,
            "top_k": top_k,
            "simulation": simulation,
        }
        return self.call("explain", body)

    def decide(
        self, request_id: str, officer_id: str, decision: str, reason: str, note: str
    ) -> dict[str, Any]:
        """Record an officer's final decision on a recommendation."""
        body = {
            "request_id": request_id,
            "officer_id": officer_id,
            "decision": decision,
            "reason": reason,
            "note": note,
        }
        return self.call("decide", body)
