"""A small metrics record of what the download stage produced, for `dvc metrics show`."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from credit_scoring.contract.conform import check_foreign_keys


def summarize_tables(tables: Mapping[str, pd.DataFrame]) -> dict:
    """Row counts, the default rate, history coverage and orphan keys of the raw tables."""
    train = tables["application_train"]
    applicants = pd.concat([train["SK_ID_CURR"], tables["application_test"]["SK_ID_CURR"]])
    return {
        "rows": {name: len(frame) for name, frame in tables.items()},
        "history_rows": int(
            sum(len(f) for n, f in tables.items() if not n.startswith("application_"))
        ),
        "default_rate": round(float(train["TARGET"].mean()), 6),
        "with_bureau": round(float(applicants.isin(tables["bureau"]["SK_ID_CURR"]).mean()), 6),
        "with_previous": round(
            float(applicants.isin(tables["previous_application"]["SK_ID_CURR"]).mean()), 6
        ),
        "orphan_rows": check_foreign_keys(dict(tables)),
    }
