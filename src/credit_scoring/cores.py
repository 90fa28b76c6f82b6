"""The cores a process may use, and how independent LightGBM fits share them.

LightGBM's OpenMP threads wait for each other at every barrier by spinning. When a fit has more
threads than the cores it actually gets (another process is busy, or the CPU affinity or a
cgroup quota allows fewer cores than the machine has), the spinning threads take the core from
the thread they wait for, and a fit of 30 s takes minutes. Independent fits (the folds, the
final fit, the trials of a search) therefore run in processes of their own, as many as there
are cores, each with the threads its share allows: on two cores, two single-threaded fits,
which nothing makes wait. A fit's model does not depend on its thread count
(``deterministic=True``, column-wise histograms), so this rule changes the time, never the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from joblib import cpu_count

from credit_scoring.errors import ConfigError


def available_cores(override: int | None = None) -> int:
    """The cores this process may run on: its CPU affinity, within any cgroup CPU quota
    (``joblib.cpu_count``, which reads both), or ``override`` when one is configured.

    Raises:
        ConfigError: an override that is not a positive whole number.
    """
    if override is None:
        return max(1, int(cpu_count()))
    if isinstance(override, bool) or not isinstance(override, int) or override < 1:
        raise ConfigError(f"threads: {override!r} is not a positive number of cores, nor null")
    return override


@dataclass(frozen=True)
class Share:
    """How ``fits`` independent fits run on some cores: ``jobs`` processes at once, each fit
    with ``threads`` threads, never more threads in all than cores."""

    jobs: int
    threads: int

    @classmethod
    def of(cls, cores: int, fits: int) -> Share:
        jobs = max(1, min(cores, fits))
        return cls(jobs=jobs, threads=max(1, cores // jobs))
