"""Model quality of the real stages, with the history and on the application alone.

    python -m benchmarks.pipeline_quality --local ../shared/data/home-credit-sample
    python -m benchmarks.pipeline_quality                    # the synthetic default

Runs download → aggregate → features → train → threshold in a scratch folder (each stage's
``main`` in this process, through the tests' stage runner), twice: with every aggregate group,
and with none (`aggregate.groups=[]`, the application-only baseline). Prints the OOF AUC, the
threshold and the cost per applicant of each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from credit_scoring.modelling.threshold import ThresholdDecision
from tests.support.stages import run_stage, write_params

STAGES = ("aggregate", "features", "train", "threshold")


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
    return {
        "oof_auc": round(train["oof_auc"], 4),
        "final_rounds": folds["final_rounds"],
        "threshold": round(decision.threshold, 4),
        "cost_per_applicant": round(decision.chosen.cost_per_applicant, 4),
        "approve_all_cost": round(decision.policies["approve_all"].cost_per_applicant, 4),
        "applicants": decision.applicants,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--local", type=Path, help="genuine Kaggle CSVs (else synthetic)")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides, e.g. model=fast")
    args = parser.parse_args()
    data = ["data=local", f"data.path={args.local.resolve()}"] if args.local else []
    with tempfile.TemporaryDirectory() as tmp:
        full = variant(Path(tmp) / "full", [*data, *args.overrides], None)
        raw = Path(tmp) / "full" / "data" / "raw"
        app = variant(Path(tmp) / "app", [*data, *args.overrides, "aggregate.groups=[]"], raw)
    report = {
        "data": str(args.local or "synthetic default"),
        "with_history": full,
        "application_only": app,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
