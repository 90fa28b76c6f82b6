"""The page: its tabs wired to the handlers, and serving it until the service gives its schema.

Tabs: Score (a known applicant by SK_ID_CURR, or the application form built from the service's
schema; the model's recommendation, and the officer's final decision recorded beside it), What
if (change key fields, see the score and the reasons move; recorded as simulations), Compare (the
applicant beside the approved and refused populations), Model (quality, threshold, costs,
importance) and Drift (the drift stage's summary, with a link to its full report).
``/?client_id=<SK_ID_CURR>`` opens the page with that applicant scored. Every figure comes from
the BentoML service; the page holds no model, so what a loan officer sees is what the API says.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gradio as gr

from credit_scoring.ui.client import ServiceClient
from credit_scoring.ui.form import build_form, read_fields
from credit_scoring.ui.handlers import SCORE_OUTPUTS, WHAT_IF_EMPTY, Handlers
from credit_scoring.ui.settings import Settings
from credit_scoring.ui.what_if import KNOBS, knob_component

log = logging.getLogger(__name__)

RETRY_SECONDS = 3.0  # how often a page without the form asks the service for its schema


def build_app(
    settings: Settings, client: ServiceClient | None = None
) -> tuple[gr.Blocks, str | None]:
    """The page for the service in ``settings``, and why it has no form (None: it has one).

    A service that cannot give its schema yet still gets a page: every tab but the form, which
    says why it is missing.
    """
    client = client or ServiceClient(settings.service_url, settings.timeout, settings.api_key)
    fields, problem = read_fields(client)
    if problem:
        log.warning("no schema yet, serving without the form: %s", problem)
    return lay_out(Handlers(client, fields, settings.drift_json), problem), problem


def serve(settings: Settings) -> None:
    """Serve until interrupted; without the schema at start-up, serve what can be served,
    wait for the service, then rebuild the page with its form on the same port."""
    client = ServiceClient(settings.service_url, settings.timeout, settings.api_key)
    drift_html = settings.drift_json.with_suffix(".html").resolve()
    while True:
        demo, problem = build_app(settings, client)
        demo.launch(
            server_name=settings.host,
            server_port=settings.port,
            allowed_paths=[str(drift_html)],
            prevent_thread_lock=True,
            ssr_mode=False,
            quiet=True,
        )
        log.info(
            "credit-scoring screen on http://%s:%d, talking to %s",
            settings.host,
            settings.port,
            settings.service_url,
        )
        if problem is None:
            demo.block_thread()
            return
        try:
            while read_fields(client)[0] is None:
                time.sleep(RETRY_SECONDS)
        except KeyboardInterrupt:
            demo.close()
            return
        log.info("the service answers: rebuilding the page with its form")
        demo.close()


def lay_out(handlers: Handlers, schema_problem: str | None = None) -> gr.Blocks:
    """The page: tabs wired to the handlers, each with an API name for clients."""
    fields = handlers.fields
    by_name = {f.name: f for f in fields}
    with gr.Blocks(title="Credit scoring", analytics_enabled=False) as demo:
        gr.Markdown("# Credit scoring")
        status = gr.Markdown()
        with gr.Tabs():
            with gr.Tab("Score"), gr.Row():
                with gr.Column(scale=2):
                    gr.Markdown("### A known applicant")
                    with gr.Row():
                        lookup = gr.Textbox(
                            label="SK_ID_CURR",
                            placeholder="an applicant of the test population",
                            scale=3,
                        )
                        lookup_btn = gr.Button("Look up and score", variant="primary", scale=1)
                    gr.Markdown("### Or an application")
                    form_id = gr.Textbox(
                        label="SK_ID_CURR whose credit history to use",
                        placeholder="none: score without credit history",
                    )
                    inputs = build_form(fields, schema_problem)
                    form_btn = gr.Button("Score this application", variant="primary")
                with gr.Column(scale=3):
                    decision = gr.Markdown("Score an applicant to see the decision here.")
                    gauge = gr.Plot(show_label=False)
                    reasons = gr.Markdown()
                    drivers = gr.Plot(show_label=False)
                    with gr.Group():
                        gr.Markdown(
                            "### Officer's decision\nThe model recommends; a credit officer "
                            "decides. Recorded beside the recommendation above."
                        )
                        with gr.Row():
                            officer = gr.Textbox(label="Officer id", scale=1)
                            final_choice = gr.Radio(
                                ["approve", "refuse"], label="Final decision", scale=1
                            )
                        override_reason = gr.Dropdown(
                            label="Reason", choices=handlers.reason_choices()
                        )
                        override_note = gr.Textbox(label="Note (optional)", lines=2)
                        decide_btn = gr.Button("Record the final decision")
                        final_md = gr.Markdown()
                    with gr.Accordion("Applicant sent to the service", open=False):
                        current = gr.JSON(label="applicant", show_label=False)
                    with gr.Accordion("The service's answer", open=False):
                        answer = gr.JSON(show_label=False)
            with gr.Tab("What if"):
                what_intro = gr.Markdown(WHAT_IF_EMPTY)
                with gr.Row():
                    knobs = [knob_component(k, by_name) for k in KNOBS[:4]]
                with gr.Row():
                    knobs += [knob_component(k, by_name) for k in KNOBS[4:]]
                what_btn = gr.Button("Score the changes", variant="primary")
                what_summary = gr.Markdown()
                what_gauge = gr.Plot(show_label=False)
                what_drivers = gr.Plot(show_label=False)
                with gr.Accordion("The service's answers", open=False):
                    what_answer = gr.JSON(show_label=False)
            with gr.Tab("Compare"):
                compare_md = gr.Markdown("Score an applicant to compare them with the population.")
                compare_plot = gr.Plot(show_label=False)
            with gr.Tab("Model"):
                model_btn = gr.Button("Refresh")
                model_md = gr.Markdown()
                with gr.Row():
                    cost_plot = gr.Plot(show_label=False)
                    importance_plot = gr.Plot(show_label=False)
                with gr.Accordion("The service's answer", open=False):
                    model_json = gr.JSON(show_label=False)
            with gr.Tab("Drift"):
                drift_btn = gr.Button("Refresh")
                drift_md = gr.Markdown()
                drift_df = gr.Dataframe(label="Columns nearest to drifting", interactive=False)

        scored = [decision, gauge, drivers, reasons, answer, current, compare_md, compare_plot]
        assert len(scored) == SCORE_OUTPUTS
        what_outputs = [*knobs, what_intro, what_summary, what_gauge, what_drivers, what_answer]
        model_outputs = [model_md, cost_plot, importance_plot, model_json]
        private = {"api_visibility": "private"}

        def after_lookup(event: Any) -> None:
            """A looked-up applicant also fills the form and sets the what-if knobs."""
            if handlers.has_form:
                event = event.then(handlers.fill_form, current, [form_id, *inputs], **private)
            event.then(handlers.start_what_if, current, what_outputs, **private)

        # The named events first: a private one reusing a handler would otherwise take its name.
        demo.load(handlers.status, None, status, api_name="status")
        demo.load(handlers.model_info, None, model_outputs, api_name="model_info")
        demo.load(handlers.drift, None, [drift_md, drift_df], api_name="drift")
        after_lookup(lookup_btn.click(handlers.score_by_id, lookup, scored, api_name="score_by_id"))
        form_btn.click(handlers.score_form, [form_id, *inputs], scored, api_name="score_form").then(
            handlers.start_what_if, current, what_outputs, **private
        )
        what_btn.click(
            handlers.what_if,
            [current, *knobs],
            [what_summary, what_gauge, what_drivers, what_answer],
            api_name="what_if",
        )
        after_lookup(lookup.submit(handlers.score_by_id, lookup, scored, **private))
        after_lookup(demo.load(handlers.score_from_link, None, [lookup, *scored], **private))
        demo.load(handlers.override_reasons, None, override_reason, **private)
        decide_btn.click(
            handlers.decide,
            [answer, officer, final_choice, override_reason, override_note],
            final_md,
            api_name="decide",
        )
        model_btn.click(handlers.model_info, None, model_outputs, **private)
        drift_btn.click(handlers.drift, None, [drift_md, drift_df], **private)
    return demo
