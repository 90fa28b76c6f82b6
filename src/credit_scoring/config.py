"""Compose the Hydra tree in ``conf/`` into the ``params.yaml`` that every stage reads.

DVC composes the same way on ``dvc exp run -S``; ``dvc repro`` does not, so ``params.yaml`` is
committed and a test keeps it equal to this composition.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf


def compose_params(conf_dir: Path, overrides: Sequence[str] = ()) -> str:
    """Return the composed configuration as YAML text, exactly as DVC would write it."""
    with initialize_config_dir(config_dir=str(conf_dir.resolve()), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return OmegaConf.to_yaml(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write params.yaml from conf/.")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=synthetic_full")
    parser.add_argument("--conf", type=Path, default=Path("conf"))
    parser.add_argument("--out", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    args.out.write_text(compose_params(args.conf, args.overrides), encoding="utf-8")


if __name__ == "__main__":
    main()
