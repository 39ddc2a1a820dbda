"""``posterior-tutor book``: the chapters executed and rendered as a static HTML book.

    posterior-tutor book                       # fast mode, into ./_build/html (bash scripts/book.sh)
    posterior-tutor book --full --out DIR      # the chapters' full sizes
    posterior-tutor book --instructor          # the exercises solved (the reference solutions)

The tool is **Sphinx with myst-nb** (the engine of Jupyter Book 1, kept by the Executable Books
project): it reads the chapters' jupytext sources directly (no .ipynb to keep in sync), executes
each in a fresh kernel (nbclient), fails the build on any cell error, and renders the Markdown,
the math and every output.  Chosen over Jupyter Book 2 / mystmd (a Node.js toolchain beside our
Python one) and nbsphinx (it needs pandoc, a binary pip does not bring).  Offline matters here:
math is typeset by a local MathJax 2 (the ``jupyter-server-mathjax`` wheel's copy), not a CDN.

What the book holds, laid out as in the repository so the chapters' relative links resolve:
``index`` (the start page: the chapter list), ``notebooks/`` (the chapters; with ``--instructor``
the solved copies of ``exercises.notebook.write_solved``), ``docs/`` (notation, study guide,
exercises, notes) and ``docs/benchmark/`` (the stored tables and plots).  Steppers appear as their
static filmstrips (the widget's HTML fallback; a static page has no kernel to drive a slider).
Figures are drawn with the inline backend whatever ``MPLBACKEND`` says (the tests set Agg).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

from ..files import resources

PROG = "posterior-tutor book"
INLINE = "module://matplotlib_inline.backend_inline"
NEEDS = ("sphinx", "myst_nb", "sphinx_book_theme", "jupyter_server_mathjax", "jupytext")

CONF = '''# Sphinx configuration of the posterior_tutor book (written by posterior_tutor/runtime/book.py)
project = "posterior_tutor"
author = "posterior_tutor"
html_title = {title!r}
extensions = ["myst_nb"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_update_mathjax = False
myst_heading_anchors = 3
nb_custom_formats = {{".py": ["jupytext.reads", {{"fmt": "py:percent"}}]}}
nb_execution_mode = "force"
nb_execution_timeout = {timeout}
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# Markdown outputs (display(Markdown(...))) with the same MyST syntax as the cells: $...$ math
nb_render_markdown_format = "myst"
# a static page cannot run a widget: show its HTML fallback (the stepper's filmstrip) instead
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.jupyter.widget-state+json", None)]
html_theme = "sphinx_book_theme"
html_theme_options = {{"show_toc_level": 2, "use_download_button": False}}
html_static_path = ["_mathjax"]
mathjax_path = "MathJax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
# the wheel's MathJax carries only the STIX-Web fonts (not MathJax's own TeX fonts)
mathjax2_config = {{"HTML-CSS": {{"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web",
                                "webFont": "STIX-Web", "imageFont": None}},
                   "SVG": {{"font": "STIX-Web"}}}}
exclude_patterns = ["conf.py", "_build", "_doctrees", "_mathjax", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]
'''


class BookError(Exception):
    """A one-line reason the book cannot be built."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Execute the chapters and render them, "
                                "with the notation, study guide and stored benchmark, as a static "
                                "HTML book (Sphinx + myst-nb, offline).")
    p.add_argument("--out", type=Path, default=Path("_build") / "html",
                   help="folder for the HTML (default: _build/html); its index.html is the start")
    p.add_argument("--full", action="store_true",
                   help="run the chapters at full size (default: fast mode, POSTERIOR_TUTOR_FAST=1)")
    p.add_argument("--instructor", action="store_true",
                   help="the exercises filled in with their reference solutions")
    p.add_argument("--chapters", default="",
                   help="comma-separated chapter numbers to include (default: all), e.g. 00,08")
    p.add_argument("--timeout", type=int, default=900,
                   help="seconds one chapter may run before the build fails (default 900)")
    return p


def chapters(only: str = "") -> list[Path]:
    """The chapter sources to render (``only``: comma-separated numbers, e.g. "00,08")."""
    every = sorted(resources.root("chapters").glob("[0-9][0-9]_*.py"))
    if not every:
        raise BookError(f"no chapter sources in {resources.root('chapters')}; reinstall "
                        "posterior_tutor.")
    wanted = [c.strip().zfill(2) for c in only.split(",") if c.strip()]
    known = {p.name[:2] for p in every}
    bad = [w for w in wanted if w not in known]
    if bad:
        raise BookError(f"--chapters names {', '.join(bad)}, which is not a chapter; the chapters "
                        f"are {', '.join(sorted(known))}.")
    return [p for p in every if not wanted or p.name[:2] in wanted]


def title_of(source: Path) -> str:
    """A chapter's title: its first Markdown heading ("Chapter 02: ...")."""
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return source.stem


def write_sources(src: Path, sources: list[Path], instructor: bool) -> list[str]:
    """Lay out the book's sources in ``src``; returns the chapter documents (without suffix)."""
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    docs = resources.root("docs")
    shutil.copytree(docs, src / "docs", ignore=shutil.ignore_patterns("benchmark"))
    shutil.copytree(resources.root("benchmark"), src / "docs" / "benchmark")
    if instructor:
        from ..exercises.notebook import write_solved
        write_solved(sources, src / "notebooks")
    else:
        for s in sources:
            shutil.copy2(s, src / "notebooks" / s.name)
    import jupyter_server_mathjax
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static",
                    src / "_mathjax" / "MathJax")
    names = [f"notebooks/{s.stem}" for s in sources]
    (src / "index.md").write_text(index_page(sources, names, instructor), encoding="utf-8")
    return names


def index_page(sources: list[Path], names: list[str], instructor: bool) -> str:
    listed = "\n".join(f"{n}" for n in names)
    rows = "\n".join(f"* {{doc}}`{title_of(s)} <{n}>`" for s, n in zip(sources, names))
    which = ("the instructor's build: every exercise is filled in with its reference solution"
             if instructor else "the student's build: the exercises are open, their solutions "
             "are not shown (``posterior-tutor book --instructor`` fills them in)")
    return f"""# posterior_tutor: diffusion-based posterior sampling, the course

Each chapter below was executed to build this page ({which}). Read a chapter here before class;
run it, step through its samplers and solve its exercises in JupyterLab
(`posterior-tutor lab`). Start with [Start here](docs/start_here.md); the symbols are in
[the notation](docs/notation.md).

## The chapters

{rows}

## Reference

* [Start here](docs/start_here.md) and [for instructors](docs/instructor.md)
* [Notation](docs/notation.md) and [every exercise](docs/exercises.md)
* The stored benchmark: [toy problems](docs/benchmark/toy.md) and [MNIST](docs/benchmark/images.md)

```{{toctree}}
:hidden:
:caption: Chapters

{listed}
```

```{{toctree}}
:hidden:
:caption: Reference
:glob:

docs/start_here
docs/notation
docs/exercises
docs/instructor
docs/benchmark/*
docs/*
docs/notes/*
```
"""


def build(out: Path, full: bool = False, instructor: bool = False, only: str = "",
          timeout: int = 900, quiet: bool = False) -> dict:
    """Execute and render the book into ``out``; returns {"pages", "seconds", "out"}."""
    missing = [m for m in NEEDS if not _importable(m)]
    if missing:
        raise BookError(f"the book needs {', '.join(missing)}, which is not installed here; "
                        'pip install "posterior_tutor[book]" (or bash scripts/setup.sh).')
    if timeout <= 0:
        raise BookError(f"--timeout must be a positive number of seconds; got {timeout}.")
    sources = chapters(only)
    out = Path(out).resolve()
    work = out.parent / f".{out.name}_src"
    start = time.monotonic()
    write_sources(work, sources, instructor)
    (work / "conf.py").write_text(CONF.format(title="posterior_tutor: the course"
                                              + (" (instructor)" if instructor else ""),
                                              timeout=timeout), encoding="utf-8")
    env = {"POSTERIOR_TUTOR_FAST": "0" if full else "1", "MPLBACKEND": INLINE}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from sphinx.cmd.build import build_main
        args = ["-b", "html", "-q" if quiet else "-Q", "-d", str(work / "_doctrees"),
                str(work), str(out)]
        code = build_main(args)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    if code != 0:
        raise BookError(f"sphinx-build failed (exit {code}); the lines above say which chapter "
                        "and cell.")
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html")
                   if "_static" not in p.parts and p.name not in {"genindex.html", "search.html"})
    for rel in pages:
        _link_outputs(out / rel)
    return {"pages": pages, "seconds": time.monotonic() - start, "out": out}


_MD_HREF = re.compile(r'href="([^"#:]+)\.md(#[^"]*)?"')


def _link_outputs(page: Path) -> None:
    """Point a cell output's link to a page (``display(Markdown("[...](../docs/x.md)"))``, which
    Sphinx does not resolve: it never parses outputs) at the rendered page, when there is one."""
    html = page.read_text(encoding="utf-8")

    def to_html(m: re.Match) -> str:
        target = (page.parent / (m.group(1) + ".html"))
        return f'href="{m.group(1)}.html{m.group(2) or ""}"' if target.is_file() else m.group(0)

    fixed = _MD_HREF.sub(to_html, html)
    if fixed != html:
        page.write_text(fixed, encoding="utf-8")


def _importable(module: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def main(argv=None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        done = build(args.out, full=args.full, instructor=args.instructor, only=args.chapters,
                     timeout=args.timeout)
    except BookError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    print(f"{PROG}: {len(done['pages'])} pages in {done['seconds']:.0f} s "
          f"({'full' if args.full else 'fast'} mode); open {done['out'] / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
