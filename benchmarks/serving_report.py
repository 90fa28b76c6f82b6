"""The serving benchmark's figures as markdown tables, ready for docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

from benchmarks.serving_servers import BENTOML_VARIANTS, FASTAPI


def report(result: dict[str, Any]) -> str:
    """The figures as markdown tables, ready for docs/benchmarks.md."""
    m = result["median"]
    args = result["settings"]
    lines = [
        f"{result['machine']}; bentoml {result['versions']['bentoml']}, fastapi "
        f"{result['versions']['fastapi']}, uvicorn {result['versions']['uvicorn']}; "
        f"model {result['tag']}; medians of {result['runs']} run(s); load average "
        f"{result['loadavg_before']:.2f} before, {result['loadavg_after']:.2f} after.",
        "",
        "| measure | BentoML | FastAPI baseline | BentoML / FastAPI |",
        "|---|---|---|---|",
    ]
    for key in ("p50", "p99"):
        lines.append(
            f"| /predict {key}, 1 connection | {m[f'bentoml_predict_{key}_ms']:.2f} ms | "
            f"{m[f'fastapi_predict_{key}_ms']:.2f} ms | {m[f'predict_{key}_ratio']:.2f}x |"
        )
    for key in ("p50", "p99"):
        lines.append(
            f"| /explain {key}, 1 connection | {m[f'bentoml_explain_{key}_ms']:.2f} ms | | |"
        )
    lines += [
        f"| /predict_batch of {args['batch_size']:,}, per call | {m['bentoml_batch_ms']:.0f} ms "
        f"({m['bentoml_batch_ms_per_applicant'] * 1e3:.0f} µs per applicant) | | |",
        f"| /readyz, /livez during batches of 2,000 and full explains, p50 / p99 / max | "
        f"{m['bentoml_probe_p50_ms']:.1f} / {m['bentoml_probe_p99_ms']:.1f} / "
        f"{m['bentoml_probe_max_ms']:.1f} ms | | |",
        "",
        f"/predict at {args['connections']} connections, {args['rounds']} rounds of "
        f"{args['slice']:g} s per server (ratios are medians of per-round ratios):",
        "",
        "| server | requests/s | p50 | p99 | CPU server / client (cores) | failed | RSS "
        "| start-up | ratio to FastAPI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(name, label) for name, (label, _) in BENTOML_VARIANTS.items()]
    for name, label in [*rows, (FASTAPI, "FastAPI baseline (uvicorn, 1 worker)")]:
        ratio = m[f"{name}_rps_ratio"]
        lines.append(
            f"| {label} | {m[f'{name}_rps']:.0f} | {m[f'{name}_p50_ms']:.1f} ms | "
            f"{m[f'{name}_p99_ms']:.1f} ms | {m[f'{name}_server_cpu']:.2f} / "
            f"{m[f'{name}_client_cpu']:.2f} | "
            f"{m[f'{name}_failed']:.0f} | {m[f'{name}_rss_mib']:.0f} MiB | "
            f"{m[f'{name}_ready_s']:.1f} s | {ratio:.2f}x |"
        )
    lines += ["", f"Same decisions from both servers: {m['same_decisions']}."]
    s = result.get("soak")
    if s:
        lines += [
            "",
            f"Soak: BentoML defaults, {s['seconds']:.0f} s at {args['connections']} connections:",
            "",
            "| requests | requests/s | non-200 | 503 | connection errors | p99 | RSS start | "
            "RSS end | growth | peak | decisions logged |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {s['requests']:,} | {s['rps']:.0f} | {s['non_200']} | {s['status_503']} | "
            f"{s['connection_errors']} | {s['p99_ms']:.1f} ms | {s['rss_start_mib']:.0f} MiB | "
            f"{s['rss_end_mib']:.0f} MiB | {s['rss_growth_mib']:+.1f} MiB | "
            f"{s['rss_peak_mib']:.0f} MiB | {s['decisions_logged']} of "
            f"{s['decisions_expected']} |",
        ]
    return "\n".join(lines)
