"""The Gradio screen end to end: the real service, the real app in a subprocess, over HTTP.

The app (``python app_gradio.py``) is pointed at the `service` fixture and driven the way any
client drives a Gradio app, with gradio_client, through the event handlers' API names. Every
figure it shows is checked against what the service itself answers for the same applicant.
The browser check renders the page in headless Chromium and saves a screenshot
(``make screenshot`` keeps it as docs/screenshot.png).
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from gradio_client import Client

from conftest import KEY_VALUE, ROOT
from credit_scoring.contract.tables import DAYS_PLACEHOLDER
from tests.support.servers import SERVICE_ENV, Server, answers, free_port, launch, stop

pytestmark = pytest.mark.slow

# Positions of the outputs of /score_by_id and /score_form.
DECISION, GAUGE, DRIVERS, REASONS, ANSWER, APPLICANT, COMPARE_MD, COMPARE_PLOT = range(8)


class App:
    """`python app_gradio.py` in a subprocess on a free loopback port, talking to a service."""

    def __init__(
        self, service_url: str, log: Path, drift_json: Path | None = None, avoid: int = 0
    ) -> None:
        self.port = free_port()
        while self.port == avoid:  # a port reserved by a server not started yet
            self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            **SERVICE_ENV,
            "CREDIT_SCORING_URL": service_url,
            "CREDIT_SCORING_UI_PORT": str(self.port),
            "CREDIT_SCORING_UI_TIMEOUT": "20",
        }
        if drift_json is not None:
            self.env["CREDIT_SCORING_DRIFT_JSON"] = str(drift_json)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> App:
        args = [sys.executable, "app_gradio.py"]
        self.process = launch(args, self.env, self.log, lambda: answers(self.url), timeout)
        return self

    def client(self) -> Client:
        return Client(self.url, verbose=False, analytics_enabled=False, download_files=False)

    def stop(self) -> None:
        stop(self.process, timeout=20)


def post(server: Server, endpoint: str, body: object) -> Any:
    response = httpx.post(f"{server.url}/{endpoint}", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def typed(value: Any) -> str:
    """A value as the screen shows it in a text box: blank when missing, 67500.0 as 67500."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)


def knob_texts(features: dict[str, Any]) -> list[str]:
    """The what-if fields as the screen shows an applicant: scores, amounts, years, income type."""
    names = ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]
    names += ["AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY"]
    texts = [typed(features.get(n)) for n in names]
    days = features.get("DAYS_EMPLOYED")
    texts.append("" if days in (None, DAYS_PLACEHOLDER) else f"{-days / 365.25:.1f}")
    texts.append(features.get("NAME_INCOME_TYPE") or "")
    return texts


def assert_readable(text: Any) -> None:
    assert isinstance(text, str) and text.strip()
    assert "Traceback" not in text and "Exception" not in text


@pytest.fixture(scope="module")
def drift_folder(tmp_path_factory) -> Path:
    """The committed drift summary, and an HTML page where the drift stage writes its report."""
    folder = tmp_path_factory.mktemp("drift")
    shutil.copy(ROOT / "reports" / "drift.json", folder / "drift.json")
    (folder / "drift.html").write_text("<html><body><h1>Drift report</h1></body></html>")
    return folder


@pytest.fixture(scope="module")
def app(service, drift_folder, tmp_path_factory) -> Iterator[App]:
    log = tmp_path_factory.mktemp("app") / "app.log"
    running = App(service.url, log, drift_folder / "drift.json").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ui(app) -> Client:
    return app.client()


@pytest.fixture(scope="module")
def scored(service, packaged) -> pd.DataFrame:
    """The first 200 test-population applicants as the service scores them, riskiest first."""
    work, params = packaged["work"], packaged["params"]
    frame = pd.read_parquet(work / params["data"]["raw_dir"] / "application_test.parquet")
    batch = [
        {
            "client_id": int(row.pop("SK_ID_CURR")),
            "features": {k: v for k, v in row.items() if not _missing(v)},
        }
        for row in frame.head(200).to_dict(orient="records")
    ]
    results = post(service, "predict_batch", {"applicants": batch})["results"]
    out = pd.DataFrame(results).sort_values("probability", ascending=False)
    assert (out["decision"] == "refuse").any() and (out["decision"] == "approve").any()
    return out.reset_index(drop=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def test_score_by_id_shows_what_the_service_decides(ui, service, scored):
    client_id = int(scored["client_id"].iloc[0])
    out = ui.predict(str(client_id), api_name="/score_by_id")
    stored = post(service, "applicant", {"client_id": client_id})
    expected = post(service, "predict", {"features": stored["features"], "client_id": client_id})
    answer = out[ANSWER]
    keys = ("probability", "score", "decision", "threshold", "cutoff_score", "risk_band")
    for key in (*keys, "model_version"):
        assert answer[key] == expected[key], key
    assert out[APPLICANT] == {"client_id": client_id, "features": stored["features"]}
    assert out[DECISION].startswith(f"## {expected['decision'].capitalize()}: probability")
    assert f"{expected['threshold']:.1%}" in out[DECISION]
    # The score in points beside the probability, the cut-off beside the threshold, as shown.
    assert f"{expected['probability']:.1%}, score {expected['score']:.0f} points" in out[DECISION]
    assert f"cut-off score {expected['cutoff_score']:.0f} points" in out[DECISION]
    gauge = json.loads(out[GAUGE]["plot"])
    assert f"{expected['score']:.0f} points" in gauge["data"][0]["text"][0]
    assert expected["risk_band"] in out[DECISION]
    assert expected["decision"] == "refuse"  # the riskiest applicant: reasons are given
    assert "Principal reasons for the refusal" in out[REASONS]
    assert answer["reasons"][0]["text"] in out[REASONS]
    assert len(answer["contributions"]) == 10
    for plot in (GAUGE, DRIVERS, COMPARE_PLOT):
        assert out[plot]["type"] == "plotly" and json.loads(out[plot]["plot"])["data"]
    population = post(service, "population", {})
    assert out[COMPARE_MD].count("\n| ") == len(population)


def test_score_from_the_form_equals_the_service(ui, service, scored):
    client_id = int(scored["client_id"].iloc[-1])  # the safest of them: an approval
    features = post(service, "applicant", {"client_id": client_id})["features"]
    fields = post(service, "schema", {})["fields"]
    values = [typed(features.get(f["name"])) for f in fields]
    out = ui.predict("", *values, api_name="/score_form")
    sent = {k: v for k, v in features.items() if v is not None}
    expected = post(service, "predict", {"features": sent})
    assert out[ANSWER]["probability"] == expected["probability"]
    assert out[ANSWER]["score"] == expected["score"]
    assert f"score {expected['score']:.0f} points" in out[DECISION]
    assert out[ANSWER]["decision"] == expected["decision"]
    assert out[ANSWER]["client_id"] is None
    if expected["decision"] == "approve":  # the safest applicant: what lowered the risk
        helping = [c for c in out[ANSWER]["contributions"] if c["contribution"] < 0][:3]
        assert helping and all(f"({c['points']:+.1f} points)" in out[REASONS] for c in helping)
    assert out[APPLICANT]["features"] == sent
    with_history = ui.predict(str(client_id), *values, api_name="/score_form")
    expected = post(service, "predict", {"features": sent, "client_id": client_id})
    assert with_history[ANSWER]["probability"] == expected["probability"]


def test_the_form_names_every_unreadable_field(ui, service):
    fields = post(service, "schema", {})["fields"]
    values = ["" for _ in fields]
    first, second = [i for i, f in enumerate(fields) if f["type"] != "category"][:2]
    values[first], values[second] = "0.4x", "1e400"
    out = ui.predict("", *values, api_name="/score_form")
    assert out[DECISION].startswith("### ⚠ Check the form")
    assert f"({fields[first]['name']}): '0.4x' is not a number" in out[DECISION]
    assert f"({fields[second]['name']}): '1e400' is not a finite number" in out[DECISION]
    assert out[ANSWER] is None
    assert_readable(out[DECISION])


def test_what_if_moves_the_score_and_the_reasons(ui, service, scored):
    client_id = int(scored["client_id"].iloc[0])
    first = ui.predict(str(client_id), api_name="/score_by_id")
    applicant = first[APPLICANT]
    knobs = knob_texts(applicant["features"])
    summary, _, drivers, answers = ui.predict(applicant, *knobs, api_name="/what_if")
    assert answers["after"]["probability"] == answers["before"]["probability"]
    assert "Nothing changed" in summary
    better = list(knobs)
    better[1] = better[2] = "0.9"  # EXT_SOURCE_2 and EXT_SOURCE_3: a much better bureau score
    summary, gauge, drivers, answers = ui.predict(applicant, *better, api_name="/what_if")
    before, after = answers["before"], answers["after"]
    assert before["decision"] == "refuse"
    assert after["probability"] < before["probability"]
    changed = {**applicant["features"], "EXT_SOURCE_2": 0.9, "EXT_SOURCE_3": 0.9}
    expected = post(service, "predict", {"features": changed, "client_id": client_id})
    assert after["probability"] == expected["probability"]
    assert after["score"] == expected["score"] > before["score"]
    assert f"score {before['score']:.0f} → {expected['score']:.0f} points" in summary
    assert f"cut-off score {expected['cutoff_score']:.0f} points" in summary
    assert "External credit score 2 (0 to 1)" in summary and "→ 0.9" in summary
    assert f"{before['probability']:.1%} → {after['probability']:.1%}" in summary
    for item in after["contributions"]:  # the reasons move with the changed fields
        if item["feature"] in ("EXT_SOURCE_2", "EXT_SOURCE_3"):
            assert item["value"] == 0.9
    drivers_before = [c["contribution"] for c in first[ANSWER]["contributions"]]
    assert [c["contribution"] for c in after["contributions"]] != drivers_before
    assert json.loads(gauge["plot"])["data"] and json.loads(drivers["plot"])["data"]
    assert before["simulation"] is True and after["simulation"] is True  # what-ifs are marked
    bad = list(knobs)
    bad[0] = "1.5"
    summary, *_ = ui.predict(applicant, *bad, api_name="/what_if")
    assert "1.5 is outside 0 to 1" in summary
    summary, *_ = ui.predict(None, *knobs, api_name="/what_if")
    assert "Score an applicant first" in summary


def test_an_officer_overrules_the_model_on_the_screen(ui, service, scored):
    """The screen shows the model's recommendation; the officer's final decision, made on the
    screen, is recorded by the service beside it and shown apart from it."""
    client_id = int(scored["client_id"].iloc[0])  # the riskiest: the model recommends refusal
    out = ui.predict(str(client_id), api_name="/score_by_id")
    recommended = out[ANSWER]
    assert recommended["simulation"] is False
    assert f"**Model recommendation: {recommended['recommendation']}**" in out[DECISION]
    assert recommended["request_id"] in out[DECISION]
    final = ui.predict(
        recommended, "officer-42", "approve", "ADDITIONAL_COLLATERAL", "guarantor signed",
        api_name="/decide",
    )  # fmt: skip
    overrides = recommended["recommendation"] == "refuse"
    verdict = "overrides the model's recommendation" if overrides else "decides the referral"
    assert final.startswith("### Officer's final decision: approve")
    assert f"officer-42 {verdict} ({recommended['recommendation']})" in final
    assert "guarantor signed" in final and "`ADDITIONAL_COLLATERAL`" in final
    missing = ui.predict(recommended, "", "approve", None, "", api_name="/decide")
    assert "Give the officer id, reason" in missing
    # The reasons the dropdown offers are the package's, as the model card lists them.
    info = post(service, "model_info", {})
    assert "ADDITIONAL_COLLATERAL" in {r["code"] for r in info["override_reasons"]}


def test_model_tab_is_the_service_model_card(ui, service):
    markdown, cost, importance, info = ui.predict(api_name="/model_info")
    expected = post(service, "model_info", {})
    assert info == expected
    assert expected["version"] in markdown
    assert f"{expected['metrics']['oof_auc']:.4f}" in markdown
    assert f"{expected['threshold']:.4f}" in markdown
    assert f"| Cut-off score | {expected['cutoff_score']:.0f} points" in markdown
    scale = expected["scorecard"]
    assert f"{scale['base_score']} points at {scale['base_odds']}:1" in markdown
    assert f"{expected['cost_per_applicant']:.4f}" in markdown
    for cost_of_policy in expected["policies"].values():
        assert f"{cost_of_policy:.4f}" in markdown
    curve = json.loads(cost["plot"])["data"][0]
    assert len(curve["x"]) == len(expected["cost_curve"])
    bars = json.loads(importance["plot"])["data"][0]
    assert bars["customdata"][0] == expected["importance"][0]["feature"]


def test_drift_tab_summarises_the_report_and_links_to_it(ui, app, drift_folder):
    markdown, table = ui.predict(api_name="/drift")
    report = json.loads((drift_folder / "drift.json").read_text())
    dataset = report["dataset"]
    assert f"{dataset['drifted_columns']} of {dataset['columns']} columns drifted" in markdown
    assert f"{report['prediction']['score']:.3f}" in markdown
    rows = table["data"]
    ratio = [r[2] / r[3] for r in rows]
    assert ratio == sorted(ratio, reverse=True) and len(rows) == min(20, len(report["columns"]))
    link = markdown.split("](", 1)[1].split(")", 1)[0]
    page = httpx.get(app.url + link, timeout=10)
    assert page.status_code == 200 and "<h1>Drift report</h1>" in page.text


def test_status_names_the_service_and_model(ui, service):
    status = ui.predict(api_name="/status")
    version = post(service, "model_info", {})["version"]
    assert service.url in status and version in status
    cutoff = post(service, "model_info", {})["cutoff_score"]
    assert f"cut-off score {cutoff:.0f} points" in status


def test_the_screen_sends_the_service_its_api_key(keyed, scored, tmp_path):
    """A screen started with the service's key (from the same variable) scores as without one."""
    app = App(keyed.url, tmp_path / "app.log")
    app.env["CREDIT_SCORING_API_KEY"] = KEY_VALUE
    app.start()
    try:
        client_id = int(scored["client_id"].iloc[0])
        out = app.client().predict(str(client_id), api_name="/score_by_id")
    finally:
        app.stop()
    assert out[ANSWER]["client_id"] == client_id
    assert out[ANSWER]["probability"] == pytest.approx(scored["probability"].iloc[0], abs=1e-12)
    assert out[DECISION].startswith("## Refuse: probability")


def test_errors_are_messages_not_tracebacks(packaged, scored, tmp_path):
    """Service down at start-up, then up (the form appears), then stopped: always a message."""
    env = {**packaged["env"], "CREDIT_SCORING_DECISION_LOG": str(tmp_path / "decisions.sqlite3")}
    second = Server(env, tmp_path / "service.log")  # not started yet: nothing on its port
    app = App(second.url, tmp_path / "app.log", avoid=second.port).start()
    try:
        down = app.client()
        client_id = str(int(scored["client_id"].iloc[0]))
        out = down.predict(client_id, api_name="/score_by_id")
        assert "is not reachable" in out[DECISION] and second.url in out[DECISION]
        assert out[ANSWER] is None and out[GAUGE] is None
        assert_readable(out[DECISION])
        assert "is not reachable" in down.predict(api_name="/status")
        markdown, *plots = down.predict(api_name="/model_info")
        assert "is not reachable" in markdown and plots == [None, None, None]
        out = down.predict("", api_name="/score_form")  # no schema yet: the form has no fields
        assert "reload the page" in out[DECISION]
        assert_readable(out[DECISION])

        second.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the app rebuilds itself with the form
            try:
                endpoints = app.client().view_api(print_info=False, return_format="dict")
                if len(endpoints["named_endpoints"]["/score_form"]["parameters"]) > 1:
                    break
            except Exception:  # between the old page and the new one
                pass
            time.sleep(1)
        else:
            pytest.fail(f"the app did not rebuild:\n{app.log.read_text()[-3000:]}")
        up = app.client()
        out = up.predict(client_id, api_name="/score_by_id")
        assert out[ANSWER]["probability"] > 0
        applicant = out[APPLICANT]

        second.stop()
        out = up.predict(client_id, api_name="/score_by_id")
        assert "is not reachable" in out[DECISION]
        assert_readable(out[DECISION])
        summary, *plots = up.predict(
            applicant, *knob_texts(applicant["features"]), api_name="/what_if"
        )
        assert "is not reachable" in summary and plots == [None, None, None]
        assert_readable(summary)
        assert "Traceback" not in app.log.read_text()
    finally:
        app.stop()
        second.stop()


def chromium() -> str | None:
    return next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)


class DevTools:
    """Just enough of the Chrome DevTools protocol to load a page, read it and photograph it."""

    def __init__(self, socket: Any) -> None:
        self.socket, self.next_id = socket, 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def photograph(browser: str, url: str, out: Path, wait_for: str, plots: int) -> str:
    """Render ``url`` in headless Chromium until it shows ``wait_for`` and ``plots`` charts.

    Chromium's own ``--screenshot`` fires once the page has loaded, before the app's queued
    events have answered; driving it over the DevTools protocol waits for the real content.
    Returns the page's text.
    """
    from websockets.sync.client import connect

    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"]
    args += ["--no-first-run", "--disable-background-networking", "--disable-component-update"]
    args += ["--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0"]
    args += ["--window-size=1280,1800", "about:blank"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None and time.monotonic() < deadline, "Chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        with connect(page, max_size=None, open_timeout=10) as socket:
            tools = DevTools(socket)
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=1280,
                height=1800,
                deviceScaleFactor=1,
                mobile=False,
            )
            tools.call("Page.navigate", url=url)
            deadline, text = time.monotonic() + 90, ""
            while time.monotonic() < deadline:
                text = tools.evaluate("document.body ? document.body.innerText : ''") or ""
                drawn = tools.evaluate("document.querySelectorAll('.js-plotly-plot').length")
                if wait_for in text and (drawn or 0) >= plots:
                    break
                time.sleep(0.3)
            else:
                pytest.fail(f"the page never showed {wait_for!r} and {plots} charts:\n{text}")
            time.sleep(1)  # the charts' last frame
            shot = tools.call("Page.captureScreenshot", format="png")
            out.write_bytes(base64.b64decode(shot["data"]))
            return text
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.browser
def test_the_page_renders_in_a_browser(app, service, scored, tmp_path):
    browser = chromium()
    if browser is None:
        if os.environ.get("CI"):  # .ci/run installs it: there, a missing browser is a failure
            pytest.fail("no Chromium on CI: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium here (Debian: apt-get install chromium)")
    from PIL import Image

    client_id = int(scored["client_id"].iloc[0])
    decision = scored["decision"].iloc[0].capitalize()
    out = tmp_path / "screenshot.png"
    url = f"{app.url}/?client_id={client_id}"  # the page opens with this applicant scored
    text = photograph(browser, url, out, f"{decision}: probability of default", plots=2)
    assert "Principal reasons for the refusal" in text and "What if" in text
    with Image.open(out) as image:
        assert image.size == (1280, 1800)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 500, "a blank or nearly blank page"
    if keep := os.environ.get("CREDIT_SCORING_SCREENSHOT"):
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, keep)
