"""Inline SVG charts of the monitoring report: reference against live shares, bin by bin.

SVG text, not images: the report stays one self-contained file, readable without a network and
sharp at any zoom. Labels are escaped here, so a template may insert the markup as it is.
"""

from __future__ import annotations

import itertools
from html import escape

import numpy as np

REFERENCE_COLOUR = "#8c96a8"
LIVE_COLOUR = "#d9534f"
STEADY_COLOUR = "#2f7ed8"
WIDTH, HEIGHT, MARGIN = 420, 170, 28


def shares(counts: list[int]) -> list[float]:
    total = float(sum(counts))
    return [count / total if total else 0.0 for count in counts]


def bin_labels(edges: list[float]) -> list[str]:
    """'<= a', 'a..b', ..., '> z' for the bins the interior edges define."""
    if not edges:
        return ["all"]
    shown = [f"{edge:.3g}" for edge in edges]
    return [
        f"<= {shown[0]}",
        *(f"{low}..{high}" for low, high in itertools.pairwise(shown)),
        f"> {shown[-1]}",
    ]


def comparison_svg(
    title: str, labels: list[str], reference: list[int], live: list[int], drifted: bool
) -> str:
    """Paired bars: the reference share (grey) and the live share (red when drifted, else blue)."""
    reference_shares, live_shares = shares(reference), shares(live)
    peak = max([*reference_shares, *live_shares, 1e-9])
    slots = max(len(labels), 1)
    slot = (WIDTH - 2 * MARGIN) / slots
    bar = max(slot / 2 - 1, 1)
    plot_height = HEIGHT - 2 * MARGIN
    colour = LIVE_COLOUR if drifted else STEADY_COLOUR
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{MARGIN}" y="16" font-size="12" font-family="sans-serif">{escape(title)}</text>',
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" '
        f'y2="{HEIGHT - MARGIN}" stroke="#333"/>',
    ]
    for index, (label, expected, actual) in enumerate(
        zip(labels, reference_shares, live_shares, strict=True)
    ):
        left = MARGIN + index * slot
        for offset, value, fill, name in (
            (0, expected, REFERENCE_COLOUR, "reference"),
            (bar, actual, colour, "live"),
        ):
            height = plot_height * value / peak
            parts.append(
                f'<rect x="{left + offset:.1f}" y="{HEIGHT - MARGIN - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{fill}">'
                f"<title>{escape(label)}: {name} {value:.1%}</title></rect>"
            )
        if slots <= 12:
            parts.append(
                f'<text x="{left + slot / 2:.1f}" y="{HEIGHT - MARGIN + 12}" font-size="8" '
                'text-anchor="middle" '
                f'font-family="sans-serif">{escape(label[:10])}</text>'
            )
    parts.append(
        f'<text x="{WIDTH - MARGIN}" y="16" font-size="10" text-anchor="end" font-family="sans-serif">'
        f'<tspan fill="{REFERENCE_COLOUR}">reference</tspan> / <tspan fill="{colour}">live</tspan></text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def feature_chart(name: str, statistics: dict) -> str:
    labels = (
        statistics["categories"] if statistics["kind"] == "categorical" else bin_labels(statistics["edges"])
    )
    return comparison_svg(
        name,
        labels,
        statistics["reference_counts"],
        statistics["live_counts"],
        bool(statistics.get("drifted")),
    )


def latency_chart(traffic: dict) -> str | None:
    """p50/p90/p99 per variant, in milliseconds; None when the log records no latency."""
    rows = [
        (variant, figures["latency_ms"])
        for variant, figures in traffic.items()
        if figures["latency_ms"]["p99"] is not None
    ]
    if not rows:
        return None
    peak = (
        max(max(value for value in quantiles.values() if value is not None) for _, quantiles in rows) or 1.0
    )
    height = 26 * len(rows) * 3 + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" aria-label="latency quantiles">',
        '<text x="4" y="14" font-size="12" font-family="sans-serif">latency quantiles (ms)</text>',
    ]
    y = 24
    for variant, quantiles in rows:
        for name, value in quantiles.items():
            length = (WIDTH - 160) * float(np.clip(value / peak, 0, 1))
            parts.append(
                f'<text x="4" y="{y + 14}" font-size="10" font-family="sans-serif">'
                f"{escape(variant)} {name}</text>"
                f'<rect x="120" y="{y + 4}" width="{length:.1f}" height="14" fill="{STEADY_COLOUR}"/>'
                f'<text x="{124 + length:.1f}" y="{y + 15}" font-size="10" '
                f'font-family="sans-serif">{value:g}</text>'
            )
            y += 26
    parts.append("</svg>")
    return "".join(parts)
