"""The BentoML store caches the package DVC versions: imported once, refused when tampered with."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from credit_scoring.modelling.scorecard import Scorecard
from credit_scoring.serving.package import (
    FILES,
    MANIFEST,
    SCORECARD,
    Manifest,
    Package,
    PackageError,
    package_version,
)


def store(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "credit_scoring.serving.store", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_manifest_names_the_content_version(packaged):
    folder = packaged["work"] / "models" / "package"
    manifest = Manifest.read(folder)
    assert manifest.to_dict() == packaged["manifest"]
    assert manifest.version == package_version(manifest.files)
    manifest.verify(folder)  # the files are the ones it names
    assert sorted(manifest.files) == sorted(FILES) and SCORECARD in manifest.files
    # The points scale travels with the model, as the package stage read it from params.yaml.
    scorecard = Package.load(folder, version=manifest.version).scorecard
    assert scorecard == Scorecard.from_dict(packaged["params"]["scorecard"])


def test_importing_again_changes_nothing(packaged, tmp_path):
    env = {**packaged["env"], "BENTOML_HOME": str(tmp_path / "home")}
    folder = packaged["work"] / "models" / "package"
    first, again = store(folder, env), store(folder, env)
    assert first.returncode == again.returncode == 0, first.stderr
    assert first.stdout == again.stdout == f"{packaged['manifest']['tag']}\n"
    assert "saved in the BentoML model store" in first.stderr
    assert "already in the BentoML model store" in again.stderr
    versions = list((tmp_path / "home" / "models" / "credit_scoring").iterdir())
    assert sorted(p.name for p in versions) == sorted([packaged["manifest"]["version"], "latest"])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda f: (f / "threshold.json").write_text('{"threshold": 0.01}'), "differ from"),
        (lambda f: (f / "known_ids.npy").unlink(), "lacks ['known_ids.npy']"),
        (lambda f: (f / MANIFEST).unlink(), "`dvc pull` fetches"),
    ],
    ids=["edited file", "missing file", "no manifest"],
)
def test_a_damaged_package_is_refused_in_one_line(packaged, tmp_path, damage, expected):
    folder = tmp_path / "package"
    shutil.copytree(packaged["work"] / "models" / "package", folder)
    damage(folder)
    done = store(folder, {**packaged["env"], "BENTOML_HOME": str(tmp_path / "home")})
    assert done.returncode == 1
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "models" / "credit_scoring").exists()


def test_a_manifest_that_is_not_json_is_a_package_error(tmp_path):
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(PackageError, match="not a package manifest"):
        Manifest.read(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"name": "x"}))
    with pytest.raises(PackageError, match="not a package manifest"):
        Manifest.read(tmp_path)


def stored_copy(packaged: dict, tmp_path: Path) -> tuple[Path, str]:
    """The package put into a store of its own, as `make serve` does: its folder and version."""
    home = tmp_path / "home"
    done = store(
        packaged["work"] / "models" / "package", {**packaged["env"], "BENTOML_HOME": str(home)}
    )
    assert done.returncode == 0, done.stderr
    version = packaged["manifest"]["version"]
    return home / "models" / "credit_scoring" / version, version


def test_the_store_keeps_the_manifest_and_the_service_loads_what_it_names(packaged, tmp_path):
    folder, version = stored_copy(packaged, tmp_path)
    assert Manifest.read(folder).to_dict() == packaged["manifest"]
    assert Package.load(folder, version=version).files == packaged["manifest"]["files"]


def test_a_model_swapped_in_the_store_is_never_served_under_the_old_version(packaged, tmp_path):
    folder, version = stored_copy(packaged, tmp_path)
    model = folder / "model.txt"
    model.write_text(model.read_text().replace("learning_rate", "learning_rate ", 1))
    with pytest.raises(PackageError, match=r"\['model.txt'\] differ from manifest.json"):
        Package.load(folder, version=version)
    with pytest.raises(PackageError, match=f"is version {version}, not 0123456789abcdef"):
        Package.load(folder, version="0123456789abcdef")
