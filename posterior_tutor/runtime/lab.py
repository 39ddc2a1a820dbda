"""``posterior-tutor lab [DIR]``: the course in a folder of the student's own, opened in JupyterLab.

    posterior-tutor lab                              # ./posterior_tutor_course, chapter 00 opens
    posterior-tutor lab course --no-browser          # prints the URL that opens chapter 00
    posterior-tutor lab course --port 8890           # flags it does not take go to jupyter lab
    posterior-tutor lab course --dry-run             # write the chapters, show the command

It writes the chapters' jupytext sources (py:percent: the package's copy of ``notebooks/``, found
by ``files.resources``), a ``jupytext.toml`` that pairs each source with its notebook (saving in
JupyterLab updates both) and the generated ``.ipynb`` into DIR.  A file the student edited is
never overwritten: ``DIR/.posterior_tutor_lab.json`` records the sha256 of every file this command
wrote; a file whose content no longer matches its record, or that it did not write, is kept and
named, and an unedited one is brought up to date with the installed package.  A notebook is made
from the source in DIR, so a source edited outside JupyterLab reaches a notebook that was not.
JupyterLab then starts with DIR as its root and the first chapter in sorted order as its default
page: the URL it prints, and the browser it opens, show that chapter.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import sys
from pathlib import Path

from ..files import resources
from . import cli

PROG = "posterior-tutor lab"
DEFAULT_DIR = "posterior_tutor_course"
MANIFEST = ".posterior_tutor_lab.json"
#: the repository's jupytext.toml settings (tests/files/test_lab.py checks they agree)
JUPYTEXT_TOML = ('formats = "ipynb,py:percent"\n'
                 'cell_metadata_filter = "tags,-all"\n'
                 'notebook_metadata_filter = "kernelspec,jupytext,-all"\n')
#: the file browser lists each chapter once, as its notebook (the sources stay on disk, paired)
HIDE = '["__pycache__", "*.pyc", ".DS_Store", "*~", ".ipynb_checkpoints", "[0-9][0-9]_*.py"]'
OURS = {"--dry-run", "-h", "--help"}


class LabError(RuntimeError):
    """What stops ``lab`` (a one-line message; the command exits with code 1)."""


def build_parser() -> cli.Parser:
    p = cli.Parser(prog=PROG, description="Write the course's chapters into DIR (never "
                   "overwriting one you edited) and open JupyterLab on the first chapter. DIR "
                   "comes first; every flag not listed here goes to jupyter lab (e.g. --port 8890).")
    p.add_argument("dir", nargs="?", type=cli.writable_dir, default=DEFAULT_DIR,
                   metavar="DIR", help=f"the course folder (default ./{DEFAULT_DIR})")
    p.add_argument("--no-browser", action="store_true",
                   help="do not open a browser; the URL jupyter prints opens the first chapter")
    p.add_argument("--dry-run", action="store_true",
                   help="write the chapters and print the jupyter lab command, do not start it")
    return p


def split_argv(argv) -> tuple[list, list]:
    """(arguments of lab, arguments for jupyter lab): DIR (when first and not a flag) and
    ``--dry-run``/``--help`` are lab's; ``--no-browser`` is both; the rest is jupyter's."""
    head = argv[:1] if argv and not argv[0].startswith("-") else []
    rest = argv[len(head):]
    ours = [a for a in rest if a in OURS or a == "--no-browser"]
    return head + ours, [a for a in rest if a not in OURS]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chapters() -> list[Path]:
    """The shipped chapter sources (``[0-9]*.py`` of the chapters tree), relative, sorted."""
    found = [p for p in resources.files("chapters") if p.name[:1].isdigit()]
    if not found:
        raise LabError(f"no chapters in {resources.root('chapters')}; reinstall posterior_tutor "
                       "(pip install --force-reinstall posterior_tutor).")
    return found


def read_manifest(dest: Path) -> dict:
    """{file relative to DIR: sha256 this command wrote} ({} for a new folder)."""
    path = dest / MANIFEST
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text())["sha256"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in record.items()):
            raise ValueError("entries are not file: sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise LabError(f"{path} cannot be read ({err}); delete it and run again (files already "
                       "in the folder are then kept as yours).") from None
    return record


def place(dest: Path, rel: str, content: bytes, record: dict) -> str:
    """Write ``content`` to ``dest/rel`` unless the student changed that file: 'written' (new),
    'updated' (unedited, replaced), 'unchanged' or 'kept' (edited: left as it is)."""
    path, new = dest / rel, sha256(content)
    status = "written"
    if path.exists():
        have = sha256(path.read_bytes())
        if have == new:
            record[rel] = new
            return "unchanged"
        if record.get(rel) != have:
            return "kept"
        status = "updated"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    record[rel] = new
    return status


def notebook_of(source: Path) -> bytes:
    """The .ipynb of a py:percent chapter source (jupytext), byte for byte the same for the same
    source: each cell's id is its position and a hash of its text (nbformat draws them at random),
    so an unedited notebook is recognised on the next run."""
    import jupytext
    try:
        nb = jupytext.reads(source.read_text(encoding="utf-8"), fmt="py:percent")
    except Exception as err:  # jupytext raises several kinds; the message is what matters
        raise LabError(f"{source} cannot be read as a py:percent notebook ({err}); restore it "
                       "by deleting it and running posterior-tutor lab again.") from None
    for i, cell in enumerate(nb.cells):
        cell.id = f"{i:03d}-{sha256(cell.source.encode())[:8]}"
    return jupytext.writes(nb, fmt="ipynb").encode()


def write_course(dest) -> dict:
    """Write the course into ``dest`` (see the module docstring): {status: [files]}, plus
    'first', the first chapter's notebook."""
    dest = Path(dest)
    record, done = read_manifest(dest), {}
    src_root, sources = resources.root("chapters"), chapters()
    jobs = [(str(rel), (src_root / rel).read_bytes()) for rel in resources.files("chapters")]
    jobs.append(("jupytext.toml", JUPYTEXT_TOML.encode()))
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for rel, content in jobs:
            done.setdefault(place(dest, rel, content, record), []).append(rel)
        for rel in sources:
            nb = str(rel.with_suffix(".ipynb"))
            done.setdefault(place(dest, nb, notebook_of(dest / rel), record), []).append(nb)
        (dest / MANIFEST).write_text(json.dumps({"written_by": PROG, "sha256": record},
                                                indent=1, sort_keys=True) + "\n")
    except OSError as err:
        raise LabError(f"cannot write the course into {dest}: {err.strerror or err} "
                       f"({err.filename or dest}); choose another folder.") from None
    done["first"] = str(sources[0].with_suffix(".ipynb"))
    return done


def summary(dest: Path, done: dict) -> list[str]:
    """What ``write_course`` did, one line per kind of outcome."""
    lines = [f"wrote {_files(done['written'])} into {dest}"] if done.get("written") else []
    if done.get("updated"):
        lines.append(f"updated {_files(done['updated'])} you had not edited: "
                     f"{', '.join(done['updated'])}")
    if done.get("unchanged"):
        lines.append(f"left {_files(done['unchanged'])} unchanged in {dest}")
    if done.get("kept"):
        lines.append(f"kept {_files(done['kept'])} you edited (not overwritten): "
                     f"{', '.join(done['kept'])}")
    return lines


def _files(names) -> str:
    return f"{len(names)} file" + ("s" if len(names) != 1 else "")


def lab_command(dest: Path, first: str, extra) -> list[str]:
    """The jupyter lab command: DIR as its root, ``first`` its default page, sources hidden."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={dest.resolve()}",
           f"--LabApp.default_url=/lab/tree/{first}", f"--ContentsManager.hide_globs={HIDE}"]
    if hasattr(os, "getuid") and os.getuid() == 0 and "--allow-root" not in extra:
        cmd.append("--allow-root")            # e.g. inside a container
    return cmd + list(extra)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, extra = split_argv(argv)
    args = build_parser().parse_args(ours)
    try:
        if importlib.util.find_spec("jupytext") is None:
            raise LabError("jupytext is not installed here; pip install jupytext (a dependency "
                           "of posterior_tutor).")
        done = write_course(args.dir)
    except LabError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    print("\n".join(summary(args.dir, done)))
    cmd = lab_command(args.dir, done["first"], extra)
    print(f"first chapter: {args.dir / done['first']}; JupyterLab opens it"
          + (" at the URL it prints below" if args.no_browser else ""))
    if args.dry_run:
        print("would run:", shlex.join(cmd))
        return 0
    if importlib.util.find_spec("jupyterlab") is None:
        print(f"{PROG}: error: JupyterLab is not installed here; pip install jupyterlab.",
              file=sys.stderr)
        return 1
    sys.stdout.flush()
    os.execv(sys.executable, cmd)
