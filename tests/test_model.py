"""The model: every applicant predicted once and out of fold, deterministic, and it learns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from credit_scoring.contract.tables import TARGET, load_contract
from credit_scoring.features.feature_schema import build_schema
from credit_scoring.features.frames import feature_frame
from credit_scoring.modelling.cross_validation import cross_validate, fit_final, top_importance
from credit_scoring.modelling.curves import learning_curve_table, precision_recall_table, roc_table

FAST = {"learning_rate": 0.1, "num_leaves": 15, "feature_fraction": 0.5, "min_child_samples": 20}


@pytest.fixture(scope="module")
def training(synthetic):
    schema = build_schema(load_contract()["application_train"], [])
    empty = pd.DataFrame({"SK_ID_CURR": pd.Series(dtype="int64")})
    frame = feature_frame(synthetic["application_train"], empty, schema)
    common = {
        "features": schema.features,
        "categorical": schema.categorical_indices,
        "params": FAST,
        "seed": 3,
        "cores": 2,
    }
    x, y = frame[list(schema.features)].to_numpy(), frame[TARGET].to_numpy()
    return x, y, common


def run_cv(training):
    x, y, common = training
    return cross_validate(
        x, y, n_folds=3, stop_share=0.1, max_rounds=200, early_stopping_rounds=20, **common
    )


def test_every_applicant_is_predicted_once_out_of_fold(training):
    _, y, _ = training
    cv = run_cv(training)
    assert not np.isnan(cv.oof).any() and ((cv.oof > 0) & (cv.oof < 1)).all()
    assert sorted(np.unique(cv.fold_of)) == [0, 1, 2]
    assert np.bincount(cv.fold_of).sum() == len(y)
    for fold in cv.folds:  # each fold's AUC is computed on its own held-out applicants only
        held = cv.fold_of == fold.index
        assert fold.auc == pytest.approx(roc_auc_score(y[held], cv.oof[held]))
        assert 1 <= fold.best_iteration < 200
    assert roc_auc_score(y, cv.oof) > 0.65


def test_same_data_and_params_give_the_same_model(training):
    x, y, common = training
    first = run_cv(training)
    second = run_cv(training)
    np.testing.assert_array_equal(first.oof, second.oof)
    a = fit_final(x, y, rounds=first.rounds, **common).model_to_string()
    b = fit_final(x, y, rounds=first.rounds, **common).model_to_string()
    assert a == b


def test_final_model_uses_the_folds_pooled_rounds(training):
    x, y, common = training
    cv = run_cv(training)
    booster = fit_final(x, y, rounds=cv.rounds, **common)
    assert booster.current_iteration() == cv.rounds
    top = top_importance(booster, n=5)
    assert len(top) == 5 and top[0]["gain"] >= top[-1]["gain"]
    assert top[0]["feature"].startswith(("EXT_SOURCE", "DAYS_", "AMT_", "CREDIT", "ANNUITY"))


def test_plot_tables_are_small(training):
    _, y, _ = training
    cv = run_cv(training)
    assert len(roc_table(y, cv.oof)) <= 200
    assert len(precision_recall_table(y, cv.oof)) <= 200
    curve = learning_curve_table(cv.folds)
    assert curve[0]["iteration"] == 1
    assert all(r["valid_auc_min"] <= r["valid_auc_mean"] <= r["valid_auc_max"] for r in curve)
