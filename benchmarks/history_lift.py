"""Does aggregating the history beat the application alone? A quick LightGBM check.

    python -m benchmarks.history_lift [--n-train 50000]          # synthetic data
    python -m benchmarks.history_lift --local ../shared/data/home-credit-sample

Five-fold out-of-fold AUC of one LightGBM on the application columns (the baseline) and of the
same LightGBM with a compact set of history aggregates added; the lift is their difference.
With --local, the genuine files are read by the local source and only the applicants whose
history the files hold whole are used (the sample's first 5,000 training applicants), so the
two figures can be compared. This is a check of the data, not the aggregate stage.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from credit_scoring.sources.local import read_local
from credit_scoring.sources.synthetic import generate

COMPLETE_HISTORY = 5000


def _agg(frame: pd.DataFrame, columns: list[str], prefix: str) -> pd.DataFrame:
    grouped = frame.groupby("SK_ID_CURR")[columns].agg(["mean", "max", "sum"])
    grouped.columns = [f"{prefix}_{c}_{s}" for c, s in grouped.columns]
    return grouped


def history_aggregates(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    balance = tables["bureau_balance"]
    late_months = balance.STATUS.isin(list("12345")).astype(float)
    bureau = tables["bureau"].assign(
        active=(tables["bureau"].CREDIT_ACTIVE == "Active").astype(float),
        late_months=tables["bureau"].SK_ID_BUREAU.map(
            late_months.groupby(balance.SK_ID_BUREAU).mean()
        ),
    )
    prev = tables["previous_application"]
    prev = prev.assign(refused=(prev.NAME_CONTRACT_STATUS == "Refused").astype(float))
    inst = tables["installments_payments"]
    inst = inst.assign(
        days_late=(inst.DAYS_ENTRY_PAYMENT - inst.DAYS_INSTALMENT).clip(lower=0),
        short=(inst.AMT_INSTALMENT - inst.AMT_PAYMENT).clip(lower=0),
    )
    cards = tables["credit_card_balance"]
    cards = cards.assign(
        utilisation=cards.AMT_BALANCE / cards.AMT_CREDIT_LIMIT_ACTUAL.replace(0, np.nan)
    )
    return pd.concat(
        [
            _agg(
                bureau, ["CREDIT_DAY_OVERDUE", "late_months", "active", "AMT_CREDIT_SUM_DEBT"], "B"
            ),
            _agg(prev, ["refused", "AMT_CREDIT"], "P"),
            _agg(inst, ["days_late", "short"], "I"),
            _agg(cards, ["utilisation", "SK_DPD"], "C"),
            _agg(tables["POS_CASH_balance"], ["SK_DPD"], "POS"),
        ],
        axis=1,
    )


def oof_auc(features: pd.DataFrame, target: pd.Series, seed: int = 0) -> float:
    oof = np.zeros(len(features))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    for fit, held in folds.split(features, target):
        model = lgb.LGBMClassifier(
            n_estimators=400,
            learning_rate=0.05,
            num_leaves=31,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.5,
            random_state=seed,
            verbose=-1,
        )
        model.fit(features.iloc[fit], target.iloc[fit])
        oof[held] = model.predict_proba(features.iloc[held])[:, 1]
    return float(roc_auc_score(target, oof))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-train", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--local", type=Path, help="genuine Kaggle files instead of synthetic")
    args = parser.parse_args()
    if args.local:
        tables = read_local(args.local)
        train = tables["application_train"].iloc[:COMPLETE_HISTORY]
    else:
        tables = generate(n_train=args.n_train, n_test=1000, seed=args.seed)
        train = tables["application_train"]
    app = train.set_index("SK_ID_CURR")
    target = app.pop("TARGET")
    baseline = oof_auc(app, target)
    with_history = oof_auc(app.join(history_aggregates(tables)), target)
    report = {
        "data": str(args.local) if args.local else f"synthetic n_train={args.n_train}",
        "applicants": len(app),
        "default_rate": round(float(target.mean()), 4),
        "auc_application_only": round(baseline, 4),
        "auc_with_history": round(with_history, 4),
        "lift": round(with_history - baseline, 4),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
