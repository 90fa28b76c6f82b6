"""Python as the Bento's image has it: only the packages of requirements-serving.lock import.

On ``PYTHONPATH``, Python runs this at start. Every installed top-level module whose
distribution is not in the lock named by ``CREDIT_SCORING_ONLY_PACKAGES`` raises
ModuleNotFoundError, as it would where it is not installed. ``import lightgbm`` imports pandas
and scikit-learn whenever they are installed, so a look at ``sys.modules`` in the development
environment proves nothing; this does.
"""

import importlib.abc
import importlib.metadata
import os
import re
import sys
from pathlib import Path


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _blocked(lock: Path) -> frozenset[str]:
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(), flags=re.MULTILINE)
    allowed = {_canonical(name) for name in pins} | {"credit-scoring"}
    return frozenset(
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if module not in sys.modules and not allowed.intersection(map(_canonical, dists))
    )


class _OnlyThese(importlib.abc.MetaPathFinder):
    def __init__(self, blocked: frozenset[str]) -> None:
        self.blocked = blocked

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(
                f"No module named {name!r} (not in the serving lock)", name=name
            )
        return None


if os.environ.get("CREDIT_SCORING_ONLY_PACKAGES"):
    sys.meta_path.insert(0, _OnlyThese(_blocked(Path(os.environ["CREDIT_SCORING_ONLY_PACKAGES"]))))
