"""The screen's event handlers: plain functions of values, so Gradio's API can drive them too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from credit_scoring.ui.cards import (
    decision_markdown,
    error_markdown,
    final_markdown,
    model_markdown,
    reasons_markdown,
    what_if_markdown,
)
from credit_scoring.ui.client import ServiceClient, ServiceError, ShownError
from credit_scoring.ui.compare import compare_figure, compare_markdown
from credit_scoring.ui.drift_report import read_drift
from credit_scoring.ui.figures import (
    TOP_K,
    contributions_figure,
    cost_figure,
    gauge_figure,
    importance_figure,
)
from credit_scoring.ui.form import Field, as_text, form_features, form_values, parse_client_id
from credit_scoring.ui.formatting import percent, points
from credit_scoring.ui.what_if import KNOBS, apply_knobs

SCORE_OUTPUTS = 8  # decision, gauge, drivers, reasons, answer, applicant, compare text and figure
WHAT_IF_EMPTY = (
    "Score an applicant first (Score tab, by SK_ID_CURR or from the form); the what-if starts "
    "from that applicant."
)


class Handlers:
    """The event handlers; each takes values and returns values, so the API can drive them."""

    def __init__(
        self, client: ServiceClient, fields: Sequence[Field] | None, drift_json: Path
    ) -> None:
        self.client = client
        self.fields = list(fields or ())
        self.has_form = fields is not None
        self.drift_json = drift_json
        self._model: tuple[dict[str, Any], dict[str, Any]] | None = None  # info, population

    def model(self, version: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The model card and populations, fetched again when the service's version changes."""
        if self._model is None or (version is not None and self._model[0]["version"] != version):
            self._model = (self.client.model_info(), self.client.population())
        return self._model

    # Score -------------------------------------------------------------------------------------

    def score_by_id(self, client_id: str | None) -> tuple:
        """Look up a test-population applicant's stored application and score it."""
        try:
            cid = parse_client_id(client_id)
            if cid is None:
                raise ShownError("Enter the SK_ID_CURR of an applicant of the test population.")
            applicant = self.client.applicant(cid)
            return self._score(applicant["features"], cid)
        except ShownError as err:
            return self._score_failed(err)

    def score_form(self, client_id: str | None, *values: str | None) -> tuple:
        """Score the application typed in the form (with a known applicant's history if given)."""
        try:
            if not self.has_form:
                raise ServiceError(
                    "The form is built from the service's schema, which the app could not read "
                    "at start-up. It rebuilds itself once the service answers: reload the page."
                )
            features = form_features(self.fields, values)
            return self._score(features, parse_client_id(client_id))
        except ShownError as err:
            return self._score_failed(err)

    def score_from_link(self, request: gr.Request) -> tuple:
        """``/?client_id=...`` opens the page with that applicant scored."""
        raw = request.query_params.get("client_id") if request else None
        if not raw:
            return tuple(gr.skip() for _ in range(SCORE_OUTPUTS + 1))
        return (raw, *self.score_by_id(raw))

    def _score(self, features: Mapping[str, Any], client_id: int | None) -> tuple:
        info, population = self.model()
        try:
            explanation = self.client.explain(features, client_id, top_k=info["feature_count"])
        except ServiceError:
            self._model = None  # the model may have changed under us: read its card again
            raise
        info, population = self.model(explanation["model_version"])
        values = {c["feature"]: c["value"] for c in explanation["contributions"]}
        descriptions = {c["feature"]: c["description"] for c in explanation["contributions"]}
        shown = {**explanation, "contributions": explanation["contributions"][:TOP_K]}
        return (
            decision_markdown(explanation),
            gauge_figure(
                explanation["probability"],
                explanation["threshold"],
                info["risk_bands"],
                score=explanation["score"],
                cutoff_score=explanation["cutoff_score"],
            ),
            contributions_figure(explanation),
            reasons_markdown(explanation),
            shown,
            {"client_id": client_id, "features": dict(features)},
            compare_markdown(population, values, descriptions),
            compare_figure(population, values, descriptions),
        )

    @staticmethod
    def _score_failed(err: ShownError) -> tuple:
        gr.Warning(str(err).split("\n")[0])
        return (error_markdown(err), None, None, "", None, None, "", None)

    def fill_form(self, applicant: Mapping[str, Any] | None) -> list[Any]:
        """Put a looked-up applicant's fields into the form, to edit and score again."""
        if not applicant:
            return [gr.skip() for _ in range(len(self.fields) + 1)]
        features = applicant["features"]
        return [as_text(applicant.get("client_id")), *form_values(self.fields, features)]

    # The officer's decision ---------------------------------------------------------------------

    def reason_choices(self) -> list[tuple[str, str]]:
        """The package's reasons an officer may give, as (label, code); none without a service."""
        try:
            info, _ = self.model()
        except ShownError:
            return []
        return [(f"{r['text']} ({r['code']})", r["code"]) for r in info["override_reasons"]]

    def override_reasons(self) -> Any:
        """The dropdown's choices again as the page loads (the service may have changed)."""
        return gr.update(choices=self.reason_choices())

    def decide(
        self,
        scored: Mapping[str, Any] | None,
        officer_id: str | None,
        decision: str | None,
        reason: str | None,
        note: str | None,
    ) -> str:
        """Record the officer's final decision on the recommendation shown; its record."""
        try:
            if not scored or "request_id" not in scored:
                raise ShownError(
                    "Score an applicant first: a final decision answers a recommendation."
                )
            missing = [
                name
                for name, value in (
                    ("officer id", officer_id),
                    ("decision", decision),
                    ("reason", reason),
                )
                if not (value or "").strip()
            ]
            if missing:
                raise ShownError(f"Give the {', '.join(missing)} of the final decision.")
            final = self.client.decide(
                scored["request_id"], officer_id.strip(), decision, reason, (note or "").strip()
            )
        except ShownError as err:
            gr.Warning(str(err).split("\n")[0])
            return error_markdown(err)
        return final_markdown(final)

    # What if -----------------------------------------------------------------------------------

    def start_what_if(self, applicant: Mapping[str, Any] | None) -> list[Any]:
        """Set the what-if knobs to the scored applicant's values and clear the last answer."""
        if not applicant:
            return [*(gr.skip() for _ in KNOBS), WHAT_IF_EMPTY, "", None, None, None]
        features = applicant["features"]
        who = applicant.get("client_id")
        intro = (
            f"Starting from {'applicant ' + str(who) if who is not None else 'the form'}: change "
            "the fields below and press **Score the changes**."
        )
        return [*(k.show(features.get(k.name)) for k in KNOBS), intro, "", None, None, None]

    def what_if(self, applicant: Mapping[str, Any] | None, *values: str | None) -> tuple:
        """Score the applicant with the knobs' changes, beside the unchanged applicant."""
        try:
            if not applicant:
                raise ShownError(WHAT_IF_EMPTY, title="No applicant yet")
            base = applicant["features"]
            client_id = applicant.get("client_id")
            changed, notes = apply_knobs(base, values)
            before = self.client.predict(base, client_id, simulation=True)
            after = self.client.explain(changed, client_id, top_k=TOP_K, simulation=True)
            info, _ = self.model(after["model_version"])
        except ShownError as err:
            gr.Warning(str(err).split("\n")[0])
            return (error_markdown(err), None, None, None)
        summary = what_if_markdown(before, after, notes)
        gauge = gauge_figure(
            after["probability"],
            after["threshold"],
            info["risk_bands"],
            before["probability"],
            score=after["score"],
            cutoff_score=after["cutoff_score"],
        )
        return (summary, gauge, contributions_figure(after), {"before": before, "after": after})

    # Model, drift, status ------------------------------------------------------------------------

    def model_info(self) -> tuple:
        """The model card as the service tells it, with its cost curve and importance."""
        try:
            self._model = None
            info, _ = self.model()
        except ShownError as err:
            return (error_markdown(err), None, None, None)
        return (model_markdown(info), cost_figure(info), importance_figure(info), info)

    def drift(self) -> tuple[str, pd.DataFrame]:
        """The latest drift summary written by the drift stage, and a link to its full report."""
        return read_drift(self.drift_json)

    def status(self) -> str:
        """One line on which service and model this page talks to, or why it cannot."""
        try:
            info, _ = self.model()
        except ShownError as err:
            return f"⚠ {err}"
        form = "" if self.has_form else " The form appears once the app has the schema."
        return (
            f"Connected to the scoring service at {self.client.url}: model "
            f"`{info['name']}:{info['version']}`, threshold {percent(info['threshold'])} "
            f"(cut-off score {points(info['cutoff_score'])}).{form}"
        )
