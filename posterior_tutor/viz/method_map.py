"""The method map: what each method approximates, and how it pays for data consistency.

    rows = pt.evaluation.properties.table()
    fig = pt.viz.method_map.method_map(rows)

Columns are the ways a method pays for agreeing with y (a backward pass through the network at
every step; a data step on the denoised estimate: proximal or Langevin; training per task;
importance weights on particles); rows are the course's other axis (zero-shot or trained).  Each
box names the method, what it puts in place of the intractable p(y | x_t), and, where the stored
toy benchmark measured it, its NFE per sample and its distance to the exact 2D posterior.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

COLUMNS = ("backward pass", "data step on x0_hat", "training", "importance weights")
FAMILIES = ("zero-shot", "trained per task")


def column_of(row: dict) -> str:
    """Which way of paying ``row`` (a properties row) belongs to."""
    pays = row["pays_with"]
    if "particle" in pays:
        return COLUMNS[3]
    if row["family"] == "trained per task":
        return COLUMNS[2]
    if row["backward"]:
        return COLUMNS[0]
    return COLUMNS[1]


def _label(row: dict, width: int = 30) -> str:
    cost = []
    if row.get("nfe_2d") is not None:
        cost.append(f"{row['nfe_2d']:.0f} NFE")
    if row.get("sw_floor_2d") is not None:
        cost.append(f"SW {row['sw_floor_2d']:.1f}x")
    wrapped = _wrap(row["approximates"], width)
    return f"{row['method']}\n{wrapped}" + (f"\n({', '.join(cost)})" if cost else "")


def _wrap(text: str, width: int) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])


def method_map(rows: list[dict], ax=None):
    """Draw the map of ``rows`` (``pt.evaluation.properties.table()``); returns the figure."""
    if not rows:
        raise ValueError("method_map needs at least one row (pt.evaluation.properties.table()).")
    fig, ax = (plt.subplots(figsize=(14, 8)) if ax is None else (ax.figure, ax))
    cells: dict[tuple[int, int], list[dict]] = {}
    for r in rows:
        cells.setdefault((COLUMNS.index(column_of(r)), FAMILIES.index(r["family"])), []).append(r)
    for (c, f), members in cells.items():
        cols = 1 if len(members) <= 2 else 2          # a crowded cell gets two sub-columns
        rows_in = -(-len(members) // cols)
        for k, r in enumerate(members):
            x = c + (k % cols + 0.5) / cols
            y = f + 1 - (k // cols + 0.5) / rows_in
            ax.text(x, y, _label(r, 22 if cols == 2 else 30), ha="center", va="center",
                    fontsize=7 if cols == 2 else 8, bbox=dict(boxstyle="round", fc=f"C{c}", alpha=0.25))
    ax.set_xlim(0, len(COLUMNS))
    ax.set_ylim(0, len(FAMILIES))
    ax.set_xticks([c + 0.5 for c in range(len(COLUMNS))], COLUMNS)
    ax.set_yticks([f + 0.5 for f in range(len(FAMILIES))], FAMILIES)
    for c in range(1, len(COLUMNS)):
        ax.axvline(c, color="0.8", lw=0.8)
    ax.axhline(1, color="0.8", lw=0.8)
    ax.set_xlabel("how the method pays for agreeing with y")
    ax.set_title("What each method puts in place of p(y | x_t), and what it costs")
    ax.tick_params(length=0)
    return fig
