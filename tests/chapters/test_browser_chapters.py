"""Every chapter, run top to bottom in JupyterLab (headless Chromium), as a student gets it.

One JupyterLab server (fast mode, the inline backend: every figure is drawn), one browser page;
for each chapter in notebooks/: open it, "run all cells", wait for an idle kernel, and require
that every code cell ran, that no cell has an error output or a traceback on stderr (a figure
that cannot be rendered shows one there), and that every unsolved exercise check printed "not
solved yet".  The chapter's kernel is shut down before the next one opens.

With Chromium and Playwright present, ``scripts/test.sh`` leaves the unsolved chapters to this
test instead of running them a second time through nbval (the solved ones still go through
nbval).  Marked ``browser``; skips, saying what is missing, like the other browser tests.
``POSTERIOR_TUTOR_BROWSER_CHAPTERS=00,03`` runs only those chapters.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from test_browser import (JS_CELLS, JS_CLOSE, JS_IDLE, JS_OPEN, JS_READY, JS_RUN_ALL,
                          PAGE_LOAD_S, SERVER_START_S, _browser_or_skip,
                          _check_unsolved_exercises, _free_port, _shut_down, _start_lab, _wait,
                          _wait_for_server)

ROOT = Path(__file__).resolve().parents[2]
CHAPTER_S = 420                 # one chapter's run-all, fast mode, on a loaded 2-core machine
TOTAL_S = 2400

pytestmark = pytest.mark.browser


def _chapters():
    only = {c.strip() for c in os.environ.get("POSTERIOR_TUTOR_BROWSER_CHAPTERS", "").split(",")
            if c.strip()}
    return [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
            if not only or p.name[:2] in only]


def _problems(code_cells) -> list:
    found = []
    for k, c in enumerate(code_cells):
        if c["count"] is None:
            found.append((k, c["source"], "did not run"))
        for o in c["outputs"]:
            if o["output_type"] == "error":
                found.append((k, c["source"], f"{o['ename']}: {o['evalue']}"))
            elif o["output_type"] == "stream" and o["name"] == "stderr" and \
                    "Traceback" in (o["text"] or ""):
                found.append((k, c["source"], "a traceback on stderr: " + o["text"][:200]))
    return found


@pytest.mark.timeout(TOTAL_S + 120)
def test_every_chapter_runs_top_to_bottom_in_jupyterlab(tmp_path):
    sync_api, exe = _browser_or_skip()
    jupytext = pytest.importorskip("jupytext", reason="jupytext is missing")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    paths = []
    for src in _chapters():
        jupytext.write(jupytext.read(src), nb_dir / f"{src.stem}.ipynb", fmt="ipynb")
        paths.append(f"{src.stem}.ipynb")
    assert paths, "no chapter to run"
    t_start, timings = time.monotonic(), {}
    port = _free_port()
    log_path = tmp_path / "jupyterlab.log"
    proc = _start_lab(tmp_path / "jupyter", nb_dir, port, log_path)
    browser = None
    try:
        _wait_for_server(proc, port, log_path, SERVER_START_S)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=exe, headless=True,
                                         args=["--no-sandbox", "--disable-dev-shm-usage",
                                               "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab?reset", timeout=PAGE_LOAD_S * 1000,
                      wait_until="domcontentloaded")
            page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.commands"
                                   " .hasCommand('docmanager:open'))",
                                   timeout=PAGE_LOAD_S * 1000, polling=500)
            for path in paths:
                t0 = time.monotonic()
                page.evaluate(JS_OPEN, path)
                _wait(page, JS_READY, path, PAGE_LOAD_S, f"{path} and an idle kernel", log_path)
                page.evaluate(JS_RUN_ALL, path)
                _wait(page, JS_IDLE, path, CHAPTER_S, f"'run all' of {path} to finish", log_path)
                code = [c for c in page.evaluate(JS_CELLS, path) if c["type"] == "code"]
                problems = _problems(code)
                assert not problems, f"{path}: {problems[:5]}"
                _check_unsolved_exercises(code)
                page.evaluate(JS_CLOSE, path)
                timings[path[:2]] = time.monotonic() - t0
            browser.close()
            browser = None
    finally:
        _shut_down(browser, proc)
    total = time.monotonic() - t_start
    print(f"every chapter in JupyterLab: {total:.0f} s (" +
          ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ")")
    assert total < TOTAL_S, f"running every chapter took {total:.0f} s"
