"""Check a batch of applicants after deployment against the training applicants.

``python -m credit_scoring.monitoring --current batch.csv --out reports/monitoring/2026-11``
writes ``drift.html`` and ``drift.json`` into ``--out``, computed as the drift stage computes
them, with the package being served (``--package``, by default ``package.dir``): its model,
calibration, threshold and the history of the applicants it knows. The reference is the
hold-out applicants that ``params.yaml`` names. It also prints the stability section of the
validation report for the batch (the PSI of the score and of the strongest features, and the
refusal rate) and writes it as ``stability.json``. With ``--records`` (the service's decision
record) it also writes ``oversight.json``: by risk grade, the recommendations (and how many
warned of inputs outside the training range), the officers'
final decisions, the overrides and the override rate.

Exit codes: 0 stable; 1 bad input (one line naming the file); 3 an alarm a scheduler should act
on: the score's PSI at or above 0.25, or the refusal rate moved by more than 5 percentage points.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from credit_scoring.atomic import write_json
from credit_scoring.contract.tables import KEY
from credit_scoring.errors import InputError, exit_on_input_error
from credit_scoring.modelling.cross_validation import top_importance
from credit_scoring.monitoring.batch import read_batch
from credit_scoring.monitoring.drift import assess, write_report
from credit_scoring.monitoring.stability import batch_stability, describe
from credit_scoring.serving.audit import oversight
from credit_scoring.serving.package import Package
from credit_scoring.serving.records import read

log = logging.getLogger("credit_scoring.monitoring")
STABILITY, OVERSIGHT = "stability.json", "oversight.json"
ALARM = 3  # the exit code of a batch a scheduler should act on


def existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} not found; `make repro` or `dvc pull` brings it")
    return path


def known_history(package: Package, ids: Sequence[int]) -> pd.DataFrame:
    """The package's aggregate rows of those applicants it knows."""
    known = [i for i, held in zip(ids, package.held(ids), strict=True) if held]
    frame = pd.DataFrame(package.history(known), columns=list(package.schema.aggregates))
    return frame.assign(**{KEY: np.asarray(known, dtype="int64")})


def check(
    current: Path, out: Path, params: Path, package_dir: Path | None, records: Path | None = None
) -> list[str]:
    """Compare the batch with the hold-out; write the reports; return the alarms raised."""
    cfg = yaml.safe_load(existing(params).read_text())
    drift, raw_dir = cfg["drift"], Path(cfg["data"]["raw_dir"])
    top = cfg["validate"]["top_features"]
    folder = existing(package_dir or cfg["package"]["dir"])
    package = Package.load(folder)
    holdout = pd.read_parquet(existing(cfg["features"]["holdout"]), columns=[KEY])[KEY]
    result = assess(
        pd.read_parquet(
            existing(raw_dir / "application_train.parquet"), filters=[(KEY, "in", list(holdout))]
        ),
        read_batch(current),
        history=lambda ids: known_history(package, ids),
        known=package.known_ids,
        schema=package.schema,
        booster=package.booster,
        calibration=package.calibration,
        decision=package.decision,
        top_features=drift["top_features"],
        sample=drift["sample"],
        seed=drift["seed"],
        drift_share=drift["drift_share"],
    )
    write_report(result, out / Path(drift["html"]).name, out / Path(drift["json"]).name)
    stability = batch_stability(
        result,
        names=("holdout", current.name),
        strongest=[row["feature"] for row in top_importance(package.booster, n=top)],
        categorical=list(package.schema.categorical),
        bins=cfg["validate"]["psi_bins"],
    )
    write_json(stability, out / STABILITY)
    dataset = result.summary["dataset"]
    log.info(
        "%d of %d columns drifted, scored by %s; report in %s",
        dataset["drifted_columns"],
        dataset["columns"],
        package.version,
        out,
    )
    for line in describe(stability):
        log.info("%s", line)
    if records is not None:
        if not records.exists():
            raise InputError(f"{records}: no such decision record")
        by_grade = oversight(read(records))
        write_json(by_grade, out / OVERSIGHT)
        for row in by_grade:
            rate = row["override_rate"]
            log.info(
                "  grade %s: %d recommendations, %d with warnings, %d final decisions, "
                "%d overridden (%s)",
                row["risk_band"],
                row["recommendations"],
                row["warned"],
                row["final_decisions"],
                row["overrides"],
                "no final decision" if rate is None else f"{100 * rate:.1f}%",
            )
    for alarm in stability["alarms"]:
        log.warning("ALARM: %s", alarm)
    return stability["alarms"]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m credit_scoring.monitoring", description=__doc__
    )
    parser.add_argument("--current", type=Path, required=True, help="a CSV or parquet batch")
    parser.add_argument("--out", type=Path, required=True, help="the report's folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--package", type=Path, help="the package folder (default package.dir)")
    parser.add_argument("--records", type=Path, help="the service's decision record (optional)")
    args = parser.parse_args()
    raised = exit_on_input_error(
        lambda: check(args.current, args.out, args.params, args.package, args.records), log
    )
    if raised:
        sys.exit(ALARM)


if __name__ == "__main__":
    main()
