"""The validation report page: each section's sentence and verdict, escaping, optional sections,
and nothing fetched from anywhere."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd

from credit_scoring.validation.fairness import group_table
from credit_scoring.validation.rank_ordering import band_table, deciles, inversions, jeffreys_test
from credit_scoring.validation.report import SENTENCES, TITLES, records, render_html
from credit_scoring.validation.stability import characteristic_stability

SCORES = {"gini": 0.5, "gini_low": 0.45, "gini_high": 0.55, "ks": 0.4, "ks_at": 0.08}
SCORES |= {"ks_low": 0.36, "ks_high": 0.44, "auc": 0.75}


def report() -> dict:
    """A report built from the package's own tables on a few hand-made applicants."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.5, 200)
    y = (rng.random(200) < p).astype("int64")
    labels, order = deciles(p)
    by_decile = band_table(y, p, labels, order)
    bands = np.where(p < 0.25, "low", "high")
    by_band = jeffreys_test(band_table(y, np.sqrt(p), bands, ["low", "high"]))  # PD overstated
    frame = pd.DataFrame({"AMT": p, "<b>NAME</b>": np.where(p < 0.2, "x", "y")})
    csi = characteristic_stability(frame, frame, ["AMT", "<b>NAME</b>"])
    refused = (p >= 0.3).astype("int64")
    groups = group_table(y, refused, {"band": bands}, min_applicants=5)
    return {
        "summary": {
            "model_version": "2024-06-01-abc",
            "data_sets": {"oof": 180, "holdout": 200},
            "threshold": 0.3,
            "cutoff_score": 612.0,
        },
        "discrimination": {"level": 0.95, "holdout": SCORES, "oof": SCORES},
        "deciles": {
            "data_set": "holdout",
            "table": records(by_decile),
            "inversions": inversions(by_decile),
        },
        "bands": {
            "data_set": "holdout",
            "level": 0.95,
            "table": records(by_band),
            "inversions": inversions(by_band),
        },
        "stability": {
            "reference": "holdout",
            "current": "application_test",
            "score_psi": 0.12,
            "score_reading": "watch",
            "characteristics": records(csi),
        },
        "fairness": {"min_applicants": 5, "table": records(groups)},
        "age": {
            "applicants": 40,
            "share_toward_refusal": 0.0,
            "max_contribution": 0.0,
            "passes": True,
        },
        "exclusions": {"excluded": ["CODE_GENDER", "NAME_FAMILY_STATUS"], "auc_cost": 0.004},
    }


def badge(page: str, key: str) -> str:
    """The verdict shown in a section."""
    section = page.split(f'<section id="{key}">')[1].split("</section>")[0]
    return section.split('class="badge ')[1].split(">")[1].split("<")[0]


def test_every_section_has_its_sentence_and_verdict():
    content = report()
    page = render_html(json.loads(json.dumps(content, allow_nan=False)))  # as the stage writes it
    for key in SENTENCES:
        assert html.escape(TITLES[key]) in page
        assert html.escape(SENTENCES[key]) in page
    assert badge(page, "discrimination") == "PASS"
    assert badge(page, "bands") == "FAIL"  # the square root of the PD: far above the default rate
    assert badge(page, "stability") == "WATCH"
    assert badge(page, "fairness") == "FLAGGED"  # everyone in "high" is refused
    assert badge(page, "age") == "PASS"
    assert badge(page, "exclusions") == "PASS"
    assert badge(page, "summary") == "FAIL"  # the worst of the others
    assert "612.0" in page and "0.120" in page  # cut-off score; PSI to 3 decimals


def test_the_page_is_offline_and_escaped():
    page = render_html(report())
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    assert "<b>NAME</b>" not in page and "&lt;b&gt;NAME&lt;/b&gt;" in page


def test_missing_sections_are_skipped():
    content = report()
    del content["summary"]["cutoff_score"]
    page = render_html({"summary": content["summary"], "age": {**content["age"], "passes": False}})
    assert "Cut-off score" not in page
    assert 'id="discrimination"' not in page and SENTENCES["fairness"] not in page
    assert badge(page, "age") == "FLAGGED" and badge(page, "summary") == "FLAGGED"
    assert "<h1>" in render_html({})
