"""reproducible_html: Evidently's random ids renumbered, so drift.html is the same every run."""

from __future__ import annotations

import re
import uuid

from credit_scoring.monitoring.drift import reproducible_html

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FIXED = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"  # uuid.NAMESPACE_DNS, in Evidently's bundled JS


def uuid7() -> str:
    """A random id shaped like Evidently's (version 7, RFC 4122 variant)."""
    return str(uuid.UUID(int=uuid.uuid4().int & ~(0xF << 76) | 7 << 76))


def page(a: str, b: str, page_id: str) -> str:
    """A page in the shape of Evidently's: ids as widget keys, links, the page's variable name."""
    return (
        f'<script>var metric_{page_id} = {{"widgets": [{{"id": "{a}", "size": 2}}, '
        f'{{"id": "{b}", "size": 2}}]}}; var e="{FIXED}";</script>\n'
        f'<div id="root_metric_{page_id}"></div>\n'
        f'<script>draw("{a}", additional_graphs_metric_{page_id}["{b}"], "{a}");</script>\n'
        "<p>x = 0.43771865976232026, 2026-11-29</p>\n"
    )


def test_ids_are_renumbered_consistently_and_other_text_untouched():
    a, b, page_id = uuid7(), uuid7(), uuid.uuid4().hex
    html = page(a, b, page_id)
    out = reproducible_html(html)

    assert a not in out and b not in out and page_id not in out
    new_a, new_b = (m.group() for m in UUID.finditer(out.split("var e=")[0]))
    assert new_a != new_b
    assert out.count(new_a) == html.count(a) == 3
    assert out.count(new_b) == html.count(b) == 2
    new_page = re.search(r"var metric_([0-9a-f]{32}) ", out)[1]
    assert out.count(new_page) == html.count(page_id) == 3
    # Same length and format, so nothing else moves; only the ids differ.
    assert len(out) == len(html)
    assert out == page(new_a, new_b, new_page)
    assert uuid.UUID(new_a).version == 7
    assert FIXED in out


def test_output_depends_only_on_where_the_ids_are():
    first = reproducible_html(page(uuid7(), uuid7(), uuid.uuid4().hex))
    second = reproducible_html(page(uuid7(), uuid7(), uuid.uuid4().hex))
    assert first == second
    assert reproducible_html(first) == first


def test_text_without_random_ids_is_unchanged():
    text = f'<p id="{FIXED}">00000000-0000-0000-0000-000000000000 metric_short 3.14</p>'
    assert reproducible_html(text) == text
