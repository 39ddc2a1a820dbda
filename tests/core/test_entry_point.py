"""``python -m posterior_tutor COMMAND``: the one entry point lists its commands, refuses an
unknown one with exit code 2, and hands the flags to the command (which checks them itself)."""
import subprocess
import sys

import pytest

from posterior_tutor.__main__ import COMMANDS, installed, main


def test_help_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_an_unknown_command_is_refused_with_the_list(capsys):
    assert main(["banana"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'banana'" in err and "bench" in err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_answers_help_without_working(name):
    """A command whose module is here shows its flags; one whose module is not (the book builder
    before its branch is merged) says so in one line, with exit code 1."""
    run = subprocess.run([sys.executable, "-m", "posterior_tutor", name, "--help"],
                         capture_output=True, text=True, timeout=120)
    if not installed(COMMANDS[name][0]):
        assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert f"python -m posterior_tutor {name}: error: " in run.stderr
        assert "is not installed here" in run.stderr
        return
    assert run.returncode == 0, run.stderr
    assert "usage" in run.stdout.lower()


def test_a_command_whose_module_is_missing_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "book", ("posterior_tutor.runtime.no_such_book", "the book"))
    assert main(["book"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the book builder is not installed here" in err
    assert installed("no_such_package.sub") is False


def test_the_console_script_is_the_same_entry_point():
    from pathlib import Path
    tomllib = pytest.importorskip("tomllib")              # Python >= 3.11
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["posterior-tutor"] == "posterior_tutor.__main__:main"
