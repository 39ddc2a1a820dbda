"""The benchmark's command line: every registered sampler side by side, in one run on one machine.

    python -m posterior_tutor.evaluation.bench            # full mode (hours on a CPU)
    python -m posterior_tutor.evaluation.bench --fast     # small slice (also when POSTERIOR_TUTOR_FAST=1 or CI)

Toy suite (``toy_suite``, exact posteriors): for the 2D bimodal problem and the d = 16, rank-4
problem, each method's sliced Wasserstein distance to exact posterior samples, as a multiple of the
exact-sampling noise floor and of the prior-samples distance, with its costs (network calls,
backward passes, wall and network time).  Image suite (``image_suite``): the MNIST tasks, PSNR /
SSIM / LPIPS / coverage, costs and peak memory.  Both write a Markdown table and a CSV
(``report``) under --out.

Long runs can be split and resumed: with --merge the rows go into the table already in --out
(replacing a stored row of the same task and method; the image suite stores each row as it is
done, the toy suite writes its table at the end of the run), and the commands of every merged
image run are listed in its header; --resume does the same but skips the rows already
stored at this --images and --samples, so a killed run picks up where it stopped:

    python -m posterior_tutor.evaluation.bench --suite images --tasks sr4 --images 16 --samples 4 --resume --out docs/benchmark

A task's rows of a stored table can be written as a table of their own, with paired
differences (``write_subset``; docs/benchmark/ud2m_vs_dps is made so from docs/benchmark).

Every flag is checked before any work starts (``runtime/cli.py``): a count of 0, an unknown task or
method, a device that is not here, an --out that names a file: one line and exit code 2.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from ..runtime import cli
from ..runtime.config import fast_mode

PROG = "python -m posterior_tutor.evaluation.bench"
COMMANDS = "images_commands.txt"    # the commands of the runs merged into a stored table


def parser() -> cli.Parser:
    """The benchmark's flags, each with a ``runtime.cli`` type that refuses bad values."""
    from .. import tasks
    from ..samplers import methods
    from .runners import image_methods
    from .toy_suite import toy_methods
    known = sorted(set(methods()) | set(toy_methods()) | set(image_methods()))
    p = cli.Parser(prog=PROG, description=__doc__,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fast", action="store_true", help="small slice (default in CI)")
    p.add_argument("--n", type=cli.positive_int, default=None,
                   help="toy suite: samples per method (default 500 fast, 2000 full)")
    p.add_argument("--methods", nargs="+", type=cli.choice(*known), default=None,
                   help=f"subset of: toy suite {', '.join(toy_methods())}; image suite "
                        f"{', '.join(image_methods())} (default: all of the suite's)")
    p.add_argument("--out", type=cli.writable_dir, default="bench_results",
                   help="folder for the tables (created if missing; default bench_results)")
    p.add_argument("--suite", type=cli.choice("toy", "images", "all"), default="all",
                   metavar="{toy,images,all}",
                   help="toy problems (exact posteriors), MNIST tasks, or both (default all)")
    p.add_argument("--tasks", nargs="+", type=cli.choice(*tasks.TASKS), default=None,
                   help=f"MNIST tasks, of {', '.join(tasks.TASKS)} (default: 2 fast, all full)")
    p.add_argument("--images", type=cli.positive_int, default=None,
                   help="held-out images per task (default 2 fast, 8 full)")
    p.add_argument("--samples", type=cli.positive_int, default=None,
                   help="samples per image (default 4 fast, 32 full)")
    p.add_argument("--no-peer", action="store_true", help="leave out deepinv's samplers")
    p.add_argument("--device", type=cli.device, default=None,
                   help="cpu, cuda or cuda:N, present on this machine (default: cuda when "
                        "present); the image suite runs there, the toy suite on the CPU")
    p.add_argument("--memory", type=cli.choice("fresh", "inline"), default=None,
                   metavar="{fresh,inline}",
                   help="peak memory per row in a fresh process (default on CPU in full mode) "
                        "or during the measured runs")
    p.add_argument("--merge", action="store_true",
                   help="merge the rows into the table in --out (a stored row of the same task "
                        "and method is replaced); the image suite stores each row as it is done")
    p.add_argument("--resume", action="store_true",
                   help="image suite: as --merge, and skip rows stored at this --images and "
                        "--samples (a killed run picks up where it stopped)")
    p.add_argument("--threads", type=cli.positive_int, default=None,
                   help="torch CPU threads (default: torch's; give 1 per run when runs share "
                        "the cores: oversubscribed threads slow every row several times)")
    return p


def _check_methods(p, args) -> None:
    """Each --methods name must run in the chosen suite(s); refuse those that would run nowhere."""
    from .runners import image_methods
    from .toy_suite import toy_methods
    accepted = {"toy": toy_methods(), "images": image_methods()}
    suites = ["toy", "images"] if args.suite == "all" else [args.suite]
    ok = sorted({m for s in suites for m in accepted[s]})
    bad = [m for m in args.methods or [] if m not in ok]
    if bad:
        p.error(f"argument --methods: {', '.join(map(repr, bad))} not run by --suite "
                f"{args.suite}; it runs {', '.join(ok)}")


def _selected(args, accepted):
    """The --methods names one suite runs (None: all of them), or [] when it runs none."""
    return None if args.methods is None else [m for m in args.methods if m in accepted]


def _run_toy(args, fast) -> None:
    from .report import toy_markdown, write_toy
    from .toy_suite import run_toy_suite, toy_methods
    names = _selected(args, toy_methods())
    if names == []:
        print(f"toy suite: none of {args.methods} runs there; skipped")
        return
    print("toy suite: on the CPU (its problems are 2- and 16-dimensional)", flush=True)
    rows = run_toy_suite(fast=fast, n=args.n, method_names=names)
    if args.merge or args.resume:        # the new rows in place of the stored ones
        rows = merge_toy(read_toy(args.out), rows)
    write_toy(rows, args.out)
    print(toy_markdown(rows))
    print(f"written: {args.out / 'toy.md'}, {args.out / 'toy.csv'}")


def read_toy(out) -> list:
    """The toy rows stored in ``out`` (toy.csv); [] when there is no table."""
    from .toy_suite import Row
    path = Path(out) / "toy.csv"
    if not path.is_file():
        return []
    text = {"problem", "method"}
    ints = {"n", "nfe", "backward"}
    with open(path) as f:
        return [Row(**{k: v if k in text else int(float(v)) if k in ints else float(v)
                       for k, v in r.items() if k in Row.__dataclass_fields__})
                for r in csv.DictReader(f)]


def merge_toy(old, new) -> list:
    """``old`` with each row of ``new`` in place of the old row of the same problem and method
    (the method's name before any " (settings)": a retrained UD2M replaces the stored one), or
    after the last row of its problem when new."""
    return _replace_or_insert(old, new, key=lambda r: (r.problem, r.method.split(" (")[0]),
                              group=lambda r: r.problem)


def _replace_or_insert(old, new, key, group) -> list:
    """``old`` with each row of ``new`` in place of the old row of the same ``key``, or, when
    new, after the last row of its ``group`` (at the end for a new group)."""
    rows = list(old)
    for r in new:
        keys = [key(o) for o in rows]
        if key(r) in keys:
            rows[keys.index(key(r))] = r
        else:
            same = [i for i, o in enumerate(rows) if group(o) == group(r)]
            rows.insert(same[-1] + 1 if same else len(rows), r)
    return rows


def read_images(out) -> list:
    """The rows stored in ``out`` (images.csv, with per-image scores from images_per_image.csv
    where present); [] when there is no table.  Fields an older table lacks keep their defaults."""
    from .image_suite import ImageRow
    from .report import PER_IMAGE
    out = Path(out)
    if not (out / "images.csv").is_file():
        return []
    fields = ImageRow.__dataclass_fields__
    text = {"task", "method", "truth"}
    with open(out / "images.csv") as f:
        rows = [ImageRow(**{k: (v if k in text else int(float(v)) if k in ("images", "samples")
                                else float(v)) for k, v in r.items() if k in fields})
                for r in csv.DictReader(f)]
    by = {(r.task, r.method): r for r in rows}
    if (out / PER_IMAGE).is_file():
        with open(out / PER_IMAGE) as f:
            for d in csv.DictReader(f):
                r = by.get((d["task"], d["method"]))
                for k, v in d.items():
                    if r is not None and k not in ("task", "method", "image") and v != "":
                        r.per_image.setdefault(k, []).append(float(v))
    return rows


def merge_rows(old, new) -> list:
    """``old`` with each row of ``new`` in place of the old row of its (task, method), or, when
    new, after the last row of its task (at the end for a new task); then, within each task, the
    trivial rows (the floors) first, the others in their order."""
    rows = _replace_or_insert(old, new, key=lambda r: (r.task, r.method), group=lambda r: r.task)
    order = list(dict.fromkeys(r.task for r in rows))
    return sorted(rows, key=lambda r: (order.index(r.task), not r.trivial))


def read_commands(out) -> list[str]:
    """The commands of the runs merged into the table in ``out`` (images_commands.txt)."""
    path = Path(out) / COMMANDS
    return [c for c in path.read_text().splitlines() if c.strip()] if path.is_file() else []


def add_command(out, command: str) -> list[str]:
    """Record ``command`` in images_commands.txt (once); returns every recorded command."""
    commands = read_commands(out)
    if command not in commands:
        commands.append(command)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / COMMANDS).write_text("\n".join(commands) + "\n")
    return commands


def write_subset(src, dst, task: str, methods, pairs=()) -> list:
    """The rows of the table stored in ``src`` for ``task`` and ``methods`` (with the task's
    trivial rows), written to ``dst`` as a table of their own, with the paired differences of
    ``pairs`` after it: the same digits, measurements and samples, no new run.  Returns the rows."""
    from .report import machine_description, write_images
    rows = merge_rows([r for r in read_images(src)
                       if r.task == task and (r.method in methods or r.trivial)], [])
    missing = [m for m in methods if m not in {r.method for r in rows}]
    if missing:
        raise ValueError(f"{src}/images.csv has no {task} row of {', '.join(missing)}.")
    made = [f"rows of {Path(src) / 'images.csv'} (made by: " + "; ".join(read_commands(src)) + ")"]
    write_images(rows, dst, machine_description(), "inline", made, pairs=pairs)
    return rows


def _storing(args, fast, device, command):
    """(skip, on_row, rows) for --merge / --resume: each row goes into the table in --out as soon
    as it is done; with --resume rows already stored at these sizes are skipped."""
    from .report import machine_description, write_images
    images = args.images or (2 if fast else 8)
    samples = args.samples or (4 if fast else 32)
    stored = read_images(args.out)
    done = {(r.task, r.method) for r in stored if r.images == images and r.per_image
            and (r.samples == samples or r.trivial)} if args.resume else set()
    memory = args.memory or ("fresh" if device.type == "cpu" and not fast else "inline")
    machine = machine_description()

    def on_row(row):
        stored[:] = merge_rows(stored, [row])
        write_images(stored, args.out, machine, memory, add_command(args.out, command))
    return (lambda task, name: (task, name) in done), on_row, stored


def _run_images(p, args, fast, device, command) -> None:
    from .image_suite import run_image_suite
    from .runners import image_methods
    from .report import images_markdown, machine_description, write_images
    names = _selected(args, image_methods())
    if names == []:
        print(f"image suite: none of {args.methods} runs there; skipped")
        return
    merging = args.merge or args.resume
    skip, on_row, stored = _storing(args, fast, device, command) if merging else (None, None, [])
    rows = run_image_suite(fast=fast, task_names=args.tasks, method_names=names,
                           n_images=args.images, n_samples=args.samples,
                           peer=not args.no_peer, device=device, memory=args.memory,
                           skip=skip, on_row=on_row)
    if not rows and not (merging and stored):
        p.error(f"argument --methods: no sampler of {names} ships for --tasks "
                f"{args.tasks}; see posterior_tutor.files.shipped.SHIPPED")
    if merging:
        print(f"{len(rows)} rows run, merged into {args.out} ({len(stored)} rows there now)")
        rows = stored
    else:
        memory = args.memory or ("fresh" if device.type == "cpu" and not fast else "inline")
        write_images(rows, args.out, machine_description(), memory, command)
    print(images_markdown(rows))
    print(f"written: {args.out / 'images.md'}, {args.out / 'images.csv'}, "
          f"{args.out / 'images_per_image.csv'}, {args.out / 'images_tradeoffs.png'}")


def main(argv=None) -> None:
    """Parse and check the flags, run the chosen suites, write their tables under --out."""
    import torch
    from ..runtime.config import resolve_device
    from .report import machine_description
    p = parser()
    args = p.parse_args(argv)
    _check_methods(p, args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    fast = args.fast or fast_mode()
    device = args.device if args.device is not None else resolve_device(None)
    print(f"posterior_tutor benchmark ({'fast' if fast else 'full'} mode) on {machine_description()}")
    if args.suite in ("toy", "all"):
        _run_toy(args, fast)
    if args.suite in ("images", "all"):
        command = f"{PROG} " + " ".join(sys.argv[1:] if argv is None else argv)
        _run_images(p, args, fast, device, command)


if __name__ == "__main__":
    main()
