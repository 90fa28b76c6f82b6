"""The BentoML model store as a cache of the package that DVC versions.

DVC is the source of truth: the ``package`` stage writes ``models/package`` (a DVC output, pushed
and pulled with everything else). Whatever needs a store (``make serve``, ``make bento``, the
tests) first calls :func:`import_package`, which saves that folder under its content version. A
version already in the store holds the same content, so importing again changes nothing.

``python -m credit_scoring.serving.store [FOLDER]`` imports the folder (by default
``package.dir`` of ``params.yaml``) into ``$BENTOML_HOME`` (default ``~/bentoml``) and prints
its tag.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import yaml

from credit_scoring.errors import exit_on_input_error
from credit_scoring.serving.package import FILES, MANIFEST, Manifest, PackageError, check_stored

log = logging.getLogger(__name__)


def import_package(folder: Path) -> str:
    """Save a package folder in the BentoML model store, unless its version is there; the tag.

    The folder must match its manifest and hold a consistent package: a store never caches a
    package the service would refuse.
    """
    import bentoml
    from bentoml.exceptions import NotFound

    manifest = Manifest.read(folder)
    check_stored(folder, manifest.version)
    try:
        bentoml.models.get(manifest.tag)
        log.info("%s is already in the BentoML model store", manifest.tag)
        return manifest.tag
    except NotFound:
        pass
    with bentoml.models.create(manifest.tag) as model:
        for name in (*FILES, MANIFEST):
            shutil.copyfile(folder / name, Path(model.path) / name)
    log.info("%s saved in the BentoML model store from %s", manifest.tag, folder)
    return manifest.tag


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m credit_scoring.serving.store", description=__doc__
    )
    parser.add_argument("folder", type=Path, nargs="?", help="a package folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()

    def store() -> None:
        if args.folder is None and not args.params.is_file():
            raise PackageError(f"no package folder given, and no {args.params} to name one")
        folder = args.folder or Path(yaml.safe_load(args.params.read_text())["package"]["dir"])
        sys.stdout.write(f"{import_package(folder)}\n")  # the tag is this command's output

    exit_on_input_error(store, log)


if __name__ == "__main__":
    main()
