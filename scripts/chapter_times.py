"""Time every chapter top to bottom, in full and in fast mode, and write docs/chapter_times.md.

    python scripts/chapter_times.py                       # all chapters, both modes
    python scripts/chapter_times.py --chapters 04 05      # only these (other rows are kept)
    python scripts/chapter_times.py --modes fast          # only one mode
    python scripts/chapter_times.py --out docs/chapter_times_gpu.md   # on a GPU machine

Each chapter is converted from its jupytext source (`notebooks/NN_*.py`) to a temporary .ipynb
and executed by `jupyter nbconvert --execute` in a fresh kernel, in `notebooks/` (as in
JupyterLab).  Full mode unsets POSTERIOR_TUTOR_FAST and CI; fast mode sets POSTERIOR_TUTOR_FAST=1.
The table records, per chapter and mode, the seconds, whether it ran without error, the device
torch saw, the machine's CPU count and its load average when the run started (a loaded machine
reads slower: the times are then upper bounds).  The budget is 10 minutes in full mode and 2 in
fast mode on the 2-core CPU; a row over budget is marked.  This measures; it is not a test.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = {"full": 600, "fast": 120}
HEADER = ["chapter", "mode", "seconds", "budget", "result", "device", "cpus", "load at start",
          "date"]


def chapters(selected):
    found = sorted(ROOT.glob("notebooks/[0-9][0-9]_*.py"))
    if not selected:
        return found
    picked = [p for p in found if p.name[:2] in selected]
    missing = set(selected) - {p.name[:2] for p in picked}
    if missing:
        sys.exit(f"no chapter numbered {', '.join(sorted(missing))}; have "
                 f"{', '.join(p.name[:2] for p in found)}")
    return picked


def device_name(env) -> str:
    code = ("import posterior_tutor as pt, torch; d = pt.default_device(); "
            "print(torch.cuda.get_device_name(d) if d.type == 'cuda' else 'cpu')")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return out.stdout.strip() or "?"


def run_one(src: Path, mode: str, timeout: int) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    env.pop("CI", None)
    env.pop("POSTERIOR_TUTOR_FAST", None)
    if mode == "fast":
        env["POSTERIOR_TUTOR_FAST"] = "1"
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        nb = Path(tmp) / (src.stem + ".ipynb")
        subprocess.run(["jupytext", "--quiet", "--to", "ipynb", "--output", str(nb), str(src)],
                       check=True, env=env)
        start = time.perf_counter()
        proc = subprocess.run(
            ["jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
             f"--ExecutePreprocessor.timeout={timeout}",
             f"--ExecutePreprocessor.cwd={src.parent}", str(nb)],
            env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    result = "ok" if proc.returncode == 0 else "FAILED"
    if proc.returncode != 0:
        last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-3:]
        print(f"{src.stem} ({mode}) failed:\n" + "\n".join(last), file=sys.stderr)
    if seconds > BUDGET[mode]:
        result += ", over budget"
    return {"chapter": src.stem, "mode": mode, "seconds": f"{seconds:.0f}",
            "budget": str(BUDGET[mode]), "result": result, "device": device_name(env),
            "cpus": str(os.cpu_count()), "load at start": f"{load:.1f}",
            "date": datetime.date.today().isoformat()}


def read_rows(path: Path) -> dict:
    rows = {}
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == len(HEADER) and re.match(r"\d\d_", cells[0]):
            rows[(cells[0], cells[1])] = dict(zip(HEADER, cells))
    return rows


def write_table(path: Path, rows: dict) -> None:
    lines = ["# How long each chapter takes", "",
             "Written by `python scripts/chapter_times.py` (see its docstring): each chapter run "
             "top to bottom by `jupyter nbconvert --execute` in a fresh kernel.  Budget: 600 s "
             "in full mode, 120 s in fast mode (`POSTERIOR_TUTOR_FAST=1`) on a 2-core CPU.  "
             "\"load at start\" is the machine's 1-minute load average when the run began: above "
             "the CPU count, other work shared the cores and the time is an upper bound.", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for key in sorted(rows):
        lines.append("| " + " | ".join(rows[key][h] for h in HEADER) + " |")
    path.write_text("\n".join(lines) + "\n")


def readme_table(rows: dict) -> str:
    """The README's summary: one line per chapter, full and fast seconds and their loads."""
    by = {}
    for (chapter, mode), row in rows.items():
        by.setdefault(chapter, {})[mode] = row
    lines = ["| chapter | full mode (s) | fast mode (s) | load (full / fast) |", "|---|---|---|---|"]
    for chapter, modes in sorted(by.items()):
        cell = [modes.get(m, {}).get("seconds", "-") for m in ("full", "fast")]
        load = [modes.get(m, {}).get("load at start", "-") for m in ("full", "fast")]
        lines.append(f"| {chapter} | {cell[0]} | {cell[1]} | {load[0]} / {load[1]} |")
    return "\n".join(lines)


def write_readme(rows: dict, path: Path = ROOT / "README.md") -> None:
    start, end = "<!-- chapter-times: written by scripts/chapter_times.py -->", "<!-- /chapter-times -->"
    text = path.read_text()
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    path.write_text(head + start + "\n" + readme_table(rows) + "\n" + end + rest.split(end, 1)[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="*", default=[], help="two-digit chapter numbers")
    parser.add_argument("--modes", nargs="*", default=["full", "fast"], choices=["full", "fast"])
    parser.add_argument("--out", default=str(ROOT / "docs" / "chapter_times.md"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows = read_rows(out)
    failed = False
    for src in chapters(args.chapters):
        for mode in args.modes:
            row = run_one(src, mode, args.timeout)
            print(" | ".join(row[h] for h in HEADER), flush=True)
            rows[(row["chapter"], row["mode"])] = row
            write_table(out, rows)
            if out == ROOT / "docs" / "chapter_times.md":
                write_readme(rows)
            failed |= not row["result"].startswith("ok")
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
