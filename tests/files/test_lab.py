"""``posterior-tutor lab``: the chapters written into a folder, a file the student edited kept and
named on the next run, an unedited one brought up to date, and the JupyterLab command that opens
the first chapter (checked without starting a server: ``--dry-run``)."""
import json
from pathlib import Path

import pytest

from posterior_tutor.__main__ import main as entry
from posterior_tutor.files import resources
from posterior_tutor.runtime import lab

REPO = Path(__file__).resolve().parents[2]
CHAPTERS = sorted(p.name for p in (REPO / "notebooks").glob("[0-9]*.py"))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder written once (the notebook conversion is the slow part); each test copies
    it rather than converting again."""
    dest = tmp_path_factory.mktemp("course")
    done = lab.write_course(dest)
    return dest, done


def _copy(course, tmp_path):
    import shutil
    shutil.copytree(course[0], tmp_path / "c")
    return tmp_path / "c"


def test_the_first_run_writes_every_chapter_its_notebook_and_the_pairing(course):
    dest, done = course
    assert sorted(done) == ["first", "written"]
    for name in CHAPTERS:
        assert (dest / name).read_bytes() == (REPO / "notebooks" / name).read_bytes()
        nb = json.loads((dest / name).with_suffix(".ipynb").read_text())
        assert nb["nbformat"] == 4 and len(nb["cells"]) > 3
    assert done["first"] == CHAPTERS[0].replace(".py", ".ipynb")
    settings = [l for l in (REPO / "jupytext.toml").read_text().splitlines() if "=" in l]
    assert (dest / "jupytext.toml").read_text().splitlines() == settings
    record = json.loads((dest / lab.MANIFEST).read_text())["sha256"]
    assert set(record) == set(done["written"]) and len(record) == 2 * len(CHAPTERS) + 1 + \
        len([p for p in resources.files("chapters") if not p.name[:1].isdigit()])


def test_a_second_run_keeps_an_edited_chapter_and_says_so(course, tmp_path, capsys):
    dest = _copy(course, tmp_path)
    edited = dest / CHAPTERS[0]
    edited.write_text(edited.read_text() + "\n# %%\nmy_answer = 42\n")
    notebook = (dest / CHAPTERS[1]).with_suffix(".ipynb")
    notebook.write_text(notebook.read_text().replace('"cells": [', '"cells": [ ', 1))
    (dest / CHAPTERS[2]).unlink()
    assert entry(["lab", str(dest), "--dry-run"]) == 0
    out = capsys.readouterr().out
    kept = sorted([CHAPTERS[0], notebook.name])
    assert f"kept 2 files you edited (not overwritten): {', '.join(kept)}" in out
    assert "my_answer = 42" in edited.read_text()                       # not overwritten
    assert "my_answer = 42" in edited.with_suffix(".ipynb").read_text()  # its notebook follows
    assert (dest / CHAPTERS[2]).read_bytes() == (REPO / "notebooks" / CHAPTERS[2]).read_bytes()
    assert f"wrote 1 file into {dest}" in out
    assert f"updated 1 file you had not edited: {CHAPTERS[0].replace('.py', '.ipynb')}" in out


def test_an_unedited_file_from_an_older_package_is_updated(course, tmp_path):
    dest = _copy(course, tmp_path)
    old = b"# the chapter as an older package shipped it\n"
    (dest / CHAPTERS[0]).write_bytes(old)
    manifest = json.loads((dest / lab.MANIFEST).read_text())
    manifest["sha256"][CHAPTERS[0]] = lab.sha256(old)
    (dest / lab.MANIFEST).write_text(json.dumps(manifest))
    done = lab.write_course(dest)
    assert done["updated"] == [CHAPTERS[0]] and "kept" not in done
    assert (dest / CHAPTERS[0]).read_bytes() == (REPO / "notebooks" / CHAPTERS[0]).read_bytes()


def test_the_command_opens_the_first_chapter_and_passes_jupyter_flags_on(course, tmp_path, capsys):
    dest = _copy(course, tmp_path)
    assert entry(["lab", str(dest), "--no-browser", "--dry-run", "--port", "8890"]) == 0
    out = capsys.readouterr().out
    first = CHAPTERS[0].replace(".py", ".ipynb")
    assert f"first chapter: {dest / first}; JupyterLab opens it at the URL it prints" in out
    command = out.split("would run: ", 1)[1]
    assert f"--LabApp.default_url=/lab/tree/{first}" in command
    assert f"--ServerApp.root_dir={dest.resolve()}" in command
    assert command.rstrip().endswith("--no-browser --port 8890")
    assert "--dry-run" not in command


def test_bad_input_is_one_line_with_an_exit_code(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as stop:
        entry(["lab", str(tmp_path / "file"), "--dry-run"])
    assert stop.value.code == 2
    assert "argument DIR: " in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / lab.MANIFEST).write_text("{not json")
    assert entry(["lab", str(tmp_path / "c"), "--dry-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot be read" in err and "delete it" in err


def test_the_default_folder_is_checked_like_a_given_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / lab.DEFAULT_DIR).write_text("a file where the course would go")
    with pytest.raises(SystemExit) as stop:
        entry(["lab", "--dry-run"])
    assert stop.value.code == 2 and f"'{lab.DEFAULT_DIR}' is a file" in capsys.readouterr().err
