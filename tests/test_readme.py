"""The README stands alone: every link it makes points inside the repository, at a file there."""

from __future__ import annotations

import re

from conftest import ROOT

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)|^\[[^\]]+\]:\s*(\S+)", re.M)


def test_every_relative_link_resolves_inside_the_repository():
    text = (ROOT / "README.md").read_text()
    targets = [a or b for a, b in LINK.findall(text)]
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links its own files"
    for target in local:
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT), f"{target} leaves the repository"
        assert path.exists(), f"{target} does not exist"
