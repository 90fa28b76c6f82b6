"""A new batch's stability, read the way the validation report reads application_test's.

The batch-monitoring command prints this section and exits non-zero on an alarm, so that a
scheduler can act: the score's PSI at or above 0.25 (shifted), or the refusal rate moved by more
than five percentage points from the reference's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from credit_scoring.monitoring.drift import DriftResult
from credit_scoring.validation.review import stability_section
from credit_scoring.validation.stability import PSI_SHIFTED

REFUSAL_CHANGE = 0.05  # a move of the refusal rate, in share of applicants, that raises an alarm


def batch_stability(
    result: DriftResult,
    *,
    names: tuple[str, str],
    strongest: Sequence[str],
    categorical: Collection[str],
    bins: int,
) -> dict[str, Any]:
    """The stability section of a batch against the reference, with the refusal rates.

    ``strongest`` features absent from the comparison (history features, when the batch holds
    applicants whose history is unknown) are left out of the characteristics.
    """
    compared = [n for n in strongest if n in result.reference and n in result.current]
    section = stability_section(
        result.reference,
        result.current,
        names=names,
        strongest=compared,
        categorical=categorical,
        bins=bins,
    )
    prediction = result.summary["prediction"]
    reference, current = prediction["reference_share_refused"], prediction["current_share_refused"]
    section["refusal_rate"] = {
        "reference": reference,
        "current": current,
        "change": current - reference,
        "flagged": abs(current - reference) > REFUSAL_CHANGE,
    }
    section["alarms"] = alarms(section)
    return section


def alarms(section: Mapping[str, Any]) -> list[str]:
    """What a scheduler should act on, each in one line; empty when the batch is stable."""
    found = []
    if section["score_psi"] >= PSI_SHIFTED:
        found.append(f"the score has shifted: PSI {section['score_psi']:.3f} >= {PSI_SHIFTED}")
    refusal = section["refusal_rate"]
    if refusal["flagged"]:
        found.append(
            f"the refusal rate moved {100 * refusal['change']:+.1f} percentage points "
            f"({100 * refusal['reference']:.1f}% to {100 * refusal['current']:.1f}%), "
            f"more than {100 * REFUSAL_CHANGE:.0f}"
        )
    return found


def describe(section: Mapping[str, Any]) -> list[str]:
    """The section as lines of text: the score, the refusal rate, each characteristic."""
    refusal = section["refusal_rate"]
    lines = [
        f"stability of {section['current']} against {section['reference']}:",
        f"  score PSI {section['score_psi']:.3f} ({section['score_reading']})",
        f"  refusal rate {100 * refusal['reference']:.1f}% -> {100 * refusal['current']:.1f}% "
        f"({100 * refusal['change']:+.1f} pp{', flagged' if refusal['flagged'] else ''})",
    ]
    lines += [
        f"  {row['feature']:<40} PSI {row['psi']:.3f} ({row['reading']})"
        for row in section["characteristics"]
    ]
    return lines
