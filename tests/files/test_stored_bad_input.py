"""Stored runs refuse bad input and bad files with errors that name the file, key and fix."""
import numpy as np
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.files import safe
from posterior_tutor.files.safe import CheckpointError

from posterior_tutor.files import stored  # noqa: E402

run = stored.run


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_RUNS", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("state,match", [
    ({"result": torch.ones(3), "settings": {}}, r"'result' is a tensor of shape \(3,\); expected a dict"),
    ({"settings": {}}, r"has no 'result'"),
    ({"result": {"x": 1}}, r"has no 'settings'"),
    ({"result": {"x": 1}, "settings": "n=3"}, r"'settings' is 'n=3' \(a str\); expected a dict"),
    ({"result": {"rows": [1, {"a": b"raw"}]}, "settings": {}},
     r"result\['rows'\]\[1\]\['a'\] = b'raw' \(a bytes\)"),
    ({"result": {"x": 1}, "settings": {"n": torch.ones(1)}}, r"settings\['n'\] = a tensor"),
    ({"result": {1: 2.0}, "settings": {}}, r"has the key 1 \(a int; keys are strings\)"),
    ({"result": {}, "settings": {}, "extra": 1}, r"unknown keys \['extra'\]"),
])
def test_a_file_off_the_schema_is_a_clear_error(runs, state, match):
    safe.write(state, runs / "bad.pt")  # a valid checksum: only the schema is wrong
    with pytest.raises(CheckpointError, match=match) as err:
        run("bad", lambda: {"v": 1}, command="run chapter 04 with RECOMPUTE = True")
    assert "bad.pt" in str(err.value) and "Regenerate it: run chapter 04" in str(err.value)


def test_a_file_without_result_says_to_regenerate_without_a_command(runs):
    safe.write({"settings": {}}, runs / "old.pt")
    with pytest.raises(CheckpointError, match="old.pt has no 'result'.*recompute=True"):
        run("old", lambda: {"v": 1})


@pytest.mark.parametrize("value", ["False", "True", 0, 1, None, "no"])
def test_recompute_takes_only_booleans(runs, value):
    with pytest.raises(TypeError, match=r"recompute must be True or False, got"):
        run("demo", lambda: {"v": 1}, recompute=value)
    assert not (runs / "demo.pt").exists()


@pytest.mark.parametrize("kwargs,match", [
    (dict(settings=[("n", 1)]), r"settings must be a dict"),
    (dict(settings={"x": torch.ones(2)}), r"settings\['x'\] = a tensor"),
    (dict(command=3), r"command must be a string"),
])
def test_bad_settings_and_command(runs, kwargs, match):
    with pytest.raises(TypeError, match=match):
        run("demo", lambda: {"v": 1}, **kwargs)


@pytest.mark.parametrize("result,match", [
    ({"x": np.arange(3)}, r"compute\(\) returned result\['x'\] = .*ndarray.*torch.as_tensor"),
    ({"f": lambda: 1}, r"compute\(\) returned result\['f'\] = .*function"),
    (torch.ones(2), r"compute\(\) must return a dict, got Tensor"),
])
def test_compute_results_that_would_not_load_back_are_refused_before_writing(runs, result, match):
    with pytest.raises(TypeError, match=match):
        run("demo", lambda: result)
    assert not (runs / "demo.pt").exists()


def test_runs_naming_a_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv("POSTERIOR_TUTOR_RUNS", str(tmp_path / "a_file"))
    with pytest.raises(FileExistsError, match=r"POSTERIOR_TUTOR_RUNS=.*a_file.* names a file"):
        run("demo", lambda: {"v": 1})


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden", 7])
def test_bad_names(runs, name):
    with pytest.raises(ValueError, match="stored run's name"):
        run(name, lambda: {"v": 1})


def test_the_committed_runs_still_match_the_schema(monkeypatch):
    monkeypatch.delenv("POSTERIOR_TUTOR_RUNS", raising=False)
    files = sorted(stored.runs_dir().glob("*.pt"))
    assert files
    for path in files:
        state = safe.verify(safe.load(path), path, required=True)
        stored.check_schema(state, str(path))
