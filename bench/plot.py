"""Pictures of a bench report: word accuracy per cell beside Tesseract's, and single-image latency
(``report.png``); word accuracy per font family on hard text, condensed and monospaced faces
marked (``report-faces.png``).

``bench.run`` writes them beside ``report.json``; this draws them again from any saved report (a
model's before and after, the GPU run's):

    python -m bench.plot bench/report.json [OUT.png]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from bench.per_face import RANK_TIER, family_rows, grid

# How each style of face is drawn in the per-family plot: colour and hatch (the hatch marks it
# without colour too).
STYLE_LOOK = {"regular": ("tab:blue", ""), "condensed": ("tab:orange", "//"), "monospaced": ("tab:green", "..")}


def accuracy_bars(report: dict) -> tuple[list[str], list[float | None], list[float | None]]:
    """Cell labels (``heldout\\nhard``) with our and Tesseract's word accuracy in percent, in the
    report's order; ``None`` where a side did not read that cell."""
    labels, ours, peer = [], [], []
    for cell, result in report["accuracy"].items():
        labels.append(cell.replace("/", "\n"))
        ours.append(100 * result["word_accuracy"])
        theirs = result.get("tesseract")
        peer.append(100 * theirs["word_accuracy"] if theirs else None)
    return labels, ours, peer


def latency_bars(report: dict) -> list[tuple[str, float, float]]:
    """``(what, p50 ms, p99 ms)`` for one image: in process, each HTTP endpoint, Tesseract."""
    rows = [(f"in-process {name}", r["p50_ms"], r["p99_ms"])
            for name, r in report.get("in_process", {}).get("single_image", {}).items()]  # fmt: skip
    rows += [(f"HTTP {name}", r["p50_ms"], r["p99_ms"]) for name, r in report.get("http", {}).items()
             if isinstance(r, dict) and "p50_ms" in r and name != "load" and "batch" not in name]  # fmt: skip
    peer = report.get("tesseract") or {}
    read_one = peer.get("in_process", {}).get("single_image", {}).get("read_one")
    if read_one:
        rows.append(("Tesseract in-process read_one", read_one["p50_ms"], read_one["p99_ms"]))
    return rows


def plot_report(report: dict) -> bytes:
    """The two panels as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, ours, peer = accuracy_bars(report)
    latency = latency_bars(report)
    fig, (acc_ax, lat_ax) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 2]})

    width = 0.4
    positions = range(len(labels))
    sides = [("word-ocr", ours, -width / 2, "tab:blue"), ("Tesseract", peer, width / 2, "tab:gray")]
    for name, values, offset, color in sides:
        read = [(x + offset, v) for x, v in zip(positions, values, strict=True) if v is not None]
        if not read:
            continue
        bars = acc_ax.bar([x for x, _ in read], [v for _, v in read], width, label=name, color=color)
        acc_ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    lowest = min(v for v in ours + peer if v is not None)
    acc_ax.set_ylim(max(0.0, lowest - 10), 101)
    acc_ax.set_xticks(list(positions), labels, fontsize=8)
    acc_ax.set_ylabel("word accuracy, %")
    acc_ax.set_title("Word accuracy on the same test images")
    acc_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, frameon=False)

    names = [name for name, _, _ in latency]
    p50 = [p for _, p, _ in latency]
    p99 = [p for _, _, p in latency]
    rows = range(len(latency))
    lat_ax.set_title("Latency, one image")
    if latency:
        lat_ax.barh(rows, p99, color="tab:orange", alpha=0.35, label="p99")
        lat_ax.barh(rows, p50, color="tab:orange", label="p50")
        lat_ax.set_yticks(list(rows), names, fontsize=8)
        lat_ax.invert_yaxis()
        lat_ax.set_xlabel("ms for one image")
        lat_ax.legend(loc="lower right")
    else:  # an --accuracy-only report
        lat_ax.text(0.5, 0.5, "not measured (accuracy only)", ha="center", va="center", transform=lat_ax.transAxes)
        lat_ax.set_axis_off()

    fig.suptitle(f"word-ocr bench, {report.get('created', '')} ({report.get('machine', '')})", fontsize=10)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out.getvalue()


def face_bars(report: dict, tier: str = RANK_TIER) -> dict[str, list[tuple[str, str, float, int]]]:
    """Per font set with per-family figures in ``tier``: ``(family, style, word accuracy in
    percent, images)``, worst first; font sets without any are left out."""
    font_sets, _ = grid(report)
    bars = {}
    for font_set in font_sets:
        rows = [(row["name"], row["style"], 100 * row["tiers"][tier]["word_accuracy"], row["tiers"][tier]["count"])
                for row in family_rows(report, font_set) if tier in row["tiers"]]  # fmt: skip
        if rows:
            bars[font_set] = sorted(rows, key=lambda r: (r[2], r[0]))
    return bars


def plot_faces(report: dict, tier: str = RANK_TIER) -> bytes | None:
    """Word accuracy per font family in ``tier`` as PNG bytes: a panel per font set, one bar per
    family, worst at the top, condensed and monospaced faces coloured and hatched; None for a
    report without per-family figures."""
    bars = face_bars(report, tier)
    if not bars:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    heights = [len(rows) for rows in bars.values()]
    fig, axes = plt.subplots(len(bars), 1, figsize=(9, 1.2 + 0.24 * sum(heights) + 0.7 * len(bars)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)  # fmt: skip
    lowest = min(value for rows in bars.values() for _, _, value, _ in rows)
    for ax, (font_set, rows) in zip(axes[:, 0], bars.items(), strict=True):
        positions = range(len(rows))
        looks = [STYLE_LOOK.get(style, STYLE_LOOK["regular"]) for _, style, _, _ in rows]
        drawn = ax.barh(list(positions), [value for _, _, value, _ in rows], color=[c for c, _ in looks],
                        edgecolor="white")  # fmt: skip
        for bar, (_, hatch) in zip(drawn, looks, strict=True):
            bar.set_hatch(hatch)
        ax.bar_label(drawn, labels=[f"{value:.1f} ({count})" for _, _, value, count in rows], fontsize=7, padding=2)
        ax.set_yticks(list(positions), [name for name, _, _, _ in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(max(0.0, lowest - 10), 104)
        ax.set_title(f"{font_set} fonts", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel(f"word accuracy on {tier} text, % (images)")
    legend = [Patch(facecolor=color, hatch=hatch, edgecolor="white", label=style)
              for style, (color, hatch) in STYLE_LOOK.items()]  # fmt: skip
    axes[0, 0].legend(handles=legend, loc="upper right", fontsize=8)  # the best faces are at the bottom
    fig.suptitle(f"Word accuracy per font family, {tier} text, worst first ({report.get('created', '')})",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="a bench report.json")
    parser.add_argument("out", type=Path, nargs="?", help="the PNG to write (default: report.png beside it); "
                        "the per-family plot goes beside it, its name ending in -faces.png")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        png = plot_report(report)
        faces = plot_faces(report)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot plot {args.report}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.report.with_name("report.png")
    out.write_bytes(png)
    print(f"wrote {out}")
    if faces is not None:
        faces_out = out.with_name(f"{out.stem}-faces.png")
        faces_out.write_bytes(faces)
        print(f"wrote {faces_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
