"""``python -m posterior_tutor COMMAND``: the one entry point lists its commands, refuses an
unknown one with exit code 2, and hands the flags to the command (which checks them itself)."""
import subprocess
import sys

import pytest

from posterior_tutor.__main__ import COMMANDS, main


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
    run = subprocess.run([sys.executable, "-m", "posterior_tutor", name, "--help"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "usage" in run.stdout.lower()
