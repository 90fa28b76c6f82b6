"""Model quality of the real stages, with the history and on the application alone.

    python -m benchmarks.pipeline_quality --local ../shared/data/home-credit-sample
    python -m benchmarks.pipeline_quality                    # the synthetic default

Runs download → aggregate → features → train → threshold in a scratch folder (each stage's
``main`` in this process, through the tests' stage runner), twice: with every aggregate group,
and with none (`aggregate.groups=[]`, the application-only baseline). Prints, for each, what
the stages wrote: the out-of-fold AUC and cost (the threshold is chosen there), and the
figures on the hold-out the features stage set aside (AUC, cost at that threshold, approving
everyone, calibration before and after, the cost-ratio sensitivity).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import data_overrides
from credit_scoring.modelling.threshold import ThresholdDecision
from tests.support.stages import run_stage, write_params

STAGES = ("aggregate", "features", "train", "threshold")


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
        }
    )


def main() -> None:
    args, overrides = data_overrides(__doc__.split("\n")[0])
    with tempfile.TemporaryDirectory() as tmp:
        full = variant(Path(tmp) / "full", overrides, None)
        raw = Path(tmp) / "full" / "data" / "raw"
        app = variant(Path(tmp) / "app", [*overrides, "aggregate.groups=[]"], raw)
    report = {
        "data": str(args.local or "synthetic default"),
        "with_history": full,
        "application_only": app,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
