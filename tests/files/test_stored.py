"""Stored runs: read by default, recomputed behind the switch, never silently from other settings."""
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.files.safe import CheckpointError


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_RUNS", str(tmp_path))
    return tmp_path


def test_computes_once_then_reads(runs, capsys):
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3.0), "psnr": 21.5}

    first = pt.files.stored.run("demo", compute, settings={"n": 3}, command="rerun demo")
    second = pt.files.stored.run("demo", compute, settings={"n": 3}, command="rerun demo")
    assert len(calls) == 1 and (runs / "demo.pt").exists()
    assert torch.equal(first["x"], second["x"]) and second["psnr"] == 21.5
    out = capsys.readouterr().out
    assert "computed in this run and stored" in out and "read stored run" in out and "rerun demo" in out


def test_recompute_replaces_and_other_settings_do_not_overwrite(runs):
    pt.files.stored.run("demo", lambda: {"v": 1}, settings={"n": 1})
    assert pt.files.stored.run("demo", lambda: {"v": 2}, settings={"n": 2})["v"] == 2   # not read
    assert pt.files.stored.run("demo", lambda: {"v": 3}, settings={"n": 1})["v"] == 1   # file kept
    assert pt.files.stored.run("demo", lambda: {"v": 4}, settings={"n": 1}, recompute=True)["v"] == 4
    assert pt.files.stored.run("demo", lambda: {"v": 5}, settings={"n": 1})["v"] == 4


def test_bad_input_and_damaged_file(runs):
    with pytest.raises(ValueError, match="name"):
        pt.files.stored.run("../escape", lambda: {})
    with pytest.raises(TypeError, match="dict"):
        pt.files.stored.run("demo", lambda: [1, 2])
    (runs / "broken.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="broken.pt"):
        pt.files.stored.run("broken", lambda: {"v": 1})
