"""Model quality of the real stages: as served, and with one choice undone at a time.

    python -m benchmarks.pipeline_quality --local ../shared/data/home-credit-sample
    python -m benchmarks.pipeline_quality                    # the synthetic default

Runs download → aggregate → features → train → threshold → validate in a scratch folder (each
stage's ``main`` in this process, through the tests' stage runner) for four variants: as
served (prohibited bases excluded, monotone constraints, every aggregate group); with the
prohibited bases as inputs (`features.exclude=[]`); without the monotone constraints
(`model/monotone=none`); and on the application alone (`aggregate.groups=[]`). Prints, for
each, what the stages wrote: the out-of-fold AUC and cost (the threshold is chosen there); the
figures on the hold-out the features stage set aside (AUC, cost at that threshold, approving
everyone, calibration before and after, the cost-ratio sensitivity); and the validation's Gini,
KS, score PSI, risk-grade table, fairness table and age rule.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import data_overrides
from credit_scoring.modelling.decision import ThresholdDecision
from tests.support.stages import run_stage, write_params

STAGES = ("aggregate", "features", "train", "threshold", "validate")
VARIANTS = {  # name: the Hydra overrides that undo one choice of the served model
    "served": [],
    "with_prohibited_bases": ["features.exclude=[]"],
    "unconstrained": ["model/monotone=none"],
    "application_only": ["aggregate.groups=[]", "model/monotone=application"],
}


def rounded(value: Any) -> Any:
    """Floats to four significant digits (a small p-value stays readable), in any nesting."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def variant(workdir: Path, overrides: list[str], raw: Path | None) -> dict:
    write_params(workdir, overrides)  # the aggregation spec stays the repository's
    if raw is None:
        run_stage("download", workdir)
    else:
        (workdir / "data").mkdir()
        (workdir / "data" / "raw").symlink_to(raw)
    for stage in STAGES:
        run_stage(stage, workdir)
    train = json.loads((workdir / "dvclive/train/metrics.json").read_text())
    folds = json.loads((workdir / "reports/folds.json").read_text())
    decision = ThresholdDecision.from_json((workdir / "models/threshold.json").read_text())
    holdout = json.loads((workdir / "reports/holdout.json").read_text())
    validation = json.loads((workdir / "reports/validation.json").read_text())
    return rounded(
        {
            "development": decision.applicants,
            "holdout": holdout["applicants"],
            "rounds": folds["rounds"],
            "oof_auc": train["oof_auc"],
            "holdout_auc": holdout["auc"],
            "threshold": decision.threshold,
            "oof_cost_per_applicant": decision.chosen.cost_per_applicant,
            "holdout_cost_per_applicant": holdout["cost_per_applicant"],
            "holdout_approve_all_cost": holdout["policies"]["approve_all"]["cost_per_applicant"],
            "holdout_refused_share": holdout["refused_share"],
            "holdout_calibration": holdout["calibration"],
            "sensitivity": holdout["sensitivity"],
            "validation": summary(validation),
        }
    )


def summary(validation: dict) -> dict:
    """The validation figures docs/benchmarks.md records, its tables kept to their key columns."""
    discrimination = validation["discrimination"]
    return {
        "gini": {k: discrimination[k]["gini"] for k in ("holdout", "oof")},
        "gini_interval": [discrimination["holdout"][k] for k in ("gini_low", "gini_high")],
        "ks": {k: discrimination[k]["ks"] for k in ("holdout", "oof")},
        "score_psi": validation["stability"]["score_psi"],
        "decile_inversions": validation["deciles"]["inversions"],
        "grades": [
            [r["band"], r["applicants"], r["default_rate"], r["mean_pd"], r["passes"]]
            for r in validation["bands"]["table"]
        ],
        "fairness": [
            [r[k] for k in ("attribute", "group", "applicants", "approval_rate")]
            + [r["adverse_impact_ratio"], r["flagged"]]
            for r in validation["fairness"]["table"]
        ],
        "age": validation["age"],
    }


def main() -> None:
    args, overrides = data_overrides(__doc__.split("\n")[0])
    report: dict[str, Any] = {"data": str(args.local or "synthetic default")}
    with tempfile.TemporaryDirectory() as tmp:
        raw = None  # downloaded once, by the first variant; the others link to it
        for name, undo in VARIANTS.items():
            # The age rule is reported, not enforced: a variant that breaks it is a finding.
            checks = ["validate.fail_on=[]"]
            report[name] = variant(Path(tmp) / name, [*overrides, *checks, *undo], raw)
            raw = raw or Path(tmp) / name / "data" / "raw"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
