"""An HTML template for `dvc plots show/diff` that renders offline.

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so it is blank without a
network. This template inlines the same libraries, bundled by vl-convert, instead.

    python -m credit_scoring.plots .dvc/tmp/offline-plots.html
    dvc plots diff --html-template .dvc/tmp/offline-plots.html -o reports/plots main
"""

from __future__ import annotations

import argparse
from pathlib import Path

import vl_convert

PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>credit-scoring plots</title>
  <script type="text/javascript">
__BUNDLE__
  </script>
  <style>body { font-family: sans-serif; } div { margin: 1em 0; }</style>
</head>
<body>
{plot_divs}
</body>
</html>
"""


def offline_template() -> str:
    """The page, with vegaEmbed, vegaLite and vega defined globally by an inline bundle."""
    return PAGE.replace("__BUNDLE__", vl_convert.javascript_bundle())


def main() -> None:
    parser = argparse.ArgumentParser(description="Write an offline HTML template for DVC plots.")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(offline_template(), encoding="utf-8")


if __name__ == "__main__":
    main()
