"""The book (``posterior-tutor book``, posterior_tutor/runtime/book.py): built in fast mode, then
every page opened in Chromium as a reader would: the math typeset (no raw TeX left on the page),
every image loaded, no error output from executing a chapter, every internal link (and anchor)
leading somewhere.  POSTERIOR_TUTOR_BOOK_CHAPTERS=00,08 builds only those chapters (quicker);
POSTERIOR_TUTOR_BOOK_BUILT=DIR checks a book already built into DIR (e.g. _build/html)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from posterior_tutor.runtime import book
from test_browser import _browser_or_skip

ONLY = os.environ.get("POSTERIOR_TUTOR_BOOK_CHAPTERS", "")

JS_MATH_DONE = """() => new Promise(done => {
  if (!window.MathJax || !MathJax.Hub) { done(false); return; }
  MathJax.Hub.Queue(() => done(!document.body.innerText.includes('File failed to load')));
})"""

JS_PAGE = """() => ({
  text: (() => {            // the prose: code (which may hold TeX for matplotlib) left out
    const body = document.querySelector('main, article, body').cloneNode(true);
    body.querySelectorAll('pre, code, .highlight, script').forEach(e => e.remove());
    return body.textContent;
  })(),
  math: document.querySelectorAll('.math').length,
  typeset: document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML').length,
  images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
  errors: Array.from(document.querySelectorAll('.output.stderr, .output.traceback, .output.error'))
            .map(e => e.innerText.slice(0, 200)),
  cellImages: document.querySelectorAll('.cell_output img').length,
})"""

RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$\n]{0,80}\\[a-zA-Z]+[^$\n]{0,80}\$")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("myst_nb", reason="the book's tools are missing: pip install -e '.[book]'")
    built = os.environ.get("POSTERIOR_TUTOR_BOOK_BUILT")
    if built:
        out = Path(built).resolve()
        pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html")
                       if "_static" not in p.parts and p.name not in {"genindex.html", "search.html"})
        return {"pages": pages, "out": out, "seconds": 0.0}
    out = tmp_path_factory.mktemp("book") / "html"
    return book.build(out, only=ONLY, quiet=True)


def test_the_book_has_every_chapter_and_the_start_page(built):
    pages = built["pages"]
    chapters = book.chapters(ONLY)
    for src in chapters:
        assert f"notebooks/{src.stem}.html" in pages, f"{src.stem} was not rendered"
    assert "index.html" in pages and "docs/notation.html" in pages
    start = (built["out"] / "index.html").read_text(encoding="utf-8")
    for src in chapters:
        assert f"notebooks/{src.stem}.html" in start, f"the start page does not list {src.stem}"
    assert "conf.html" not in pages


@pytest.mark.timeout(600)
def test_every_page_reads_in_chromium(built):
    sync_api, exe = _browser_or_skip()
    out = built["out"]
    problems = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage",
                                           "--disable-gpu", "--allow-file-access-from-files"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        for rel in built["pages"]:
            page.goto((out / rel).as_uri(), wait_until="load")
            info = page.evaluate(JS_PAGE)
            if info["math"]:
                assert page.evaluate(JS_MATH_DONE), f"{rel}: MathJax did not load (or a file of it)"
                info = page.evaluate(JS_PAGE)
                if not info["typeset"]:
                    problems.append((rel, "math not typeset"))
                raw = RAW_TEX.findall(info["text"])
                if raw:
                    problems.append((rel, f"raw TeX left: {raw[:3]}"))
            broken = [src for src, ok in info["images"] if not ok]
            if broken:
                problems.append((rel, f"images not loaded: {broken[:3]}"))
            if info["errors"]:
                problems.append((rel, f"error output: {info['errors'][:2]}"))
            if rel.startswith("notebooks/") and not info["cellImages"]:
                problems.append((rel, "a chapter page without a single figure"))
            problems += [(rel, f"link leads nowhere: {h}") for h in info["links"]
                         if not _resolves(out, rel, h)]
        browser.close()
    assert not problems, problems[:10]


def _resolves(out: Path, rel: str, href: str) -> bool:
    """True when a relative link of page ``rel`` names an existing file (and anchor)."""
    url = urlparse(href)
    if url.scheme in {"http", "https", "mailto", "data", "javascript"} or url.netloc:
        return True
    here = out / rel
    target = here if not url.path else (here.parent / unquote(url.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return False
    if url.fragment and target.suffix == ".html":
        html = target.read_text(encoding="utf-8", errors="replace")
        return f'id="{url.fragment}"' in html
    return True


def test_the_command_refuses_bad_flags_in_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "posterior_tutor", "book", "--chapters", "42",
                          "--out", str(tmp_path / "h")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert "--chapters names 42, which is not a chapter" in res.stderr
    with pytest.raises(book.BookError, match="--timeout must be a positive"):
        book.build(tmp_path / "h", timeout=0)


def test_a_missing_tool_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(book, "_importable", lambda m: m != "myst_nb")
    with pytest.raises(book.BookError, match=r"needs myst_nb.*pip install \"posterior_tutor\[book\]\""):
        book.build(tmp_path / "h")
