"""The environment variables the package reads: bad values are refused (or warned about) with
messages naming the variable, the value and what is accepted."""
import warnings

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.runtime import config, progress

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
no_mps = pytest.mark.skipif(torch.backends.mps.is_available(), reason="checks the no-MPS error")
ACCEPTED = "1/0, true/false, yes/no, on/off"


@pytest.fixture(autouse=True)
def fresh_cache():
    config.parse_flag.cache_clear()
    yield
    config.parse_flag.cache_clear()


@pytest.mark.parametrize("value", ["banana", "2", "ja", "enabled", "1.0"])
def test_fast_with_a_bad_value_is_an_error(monkeypatch, value):
    monkeypatch.setenv("POSTERIOR_TUTOR_FAST", value)
    with pytest.raises(ValueError, match=f"POSTERIOR_TUTOR_FAST='{value}' is not a yes/no value; "
                                         f"accepted: {ACCEPTED}"):
        pt.fast_mode()


@pytest.mark.parametrize("value,fast", [("1", True), ("TRUE", True), (" on ", True), ("yes", True),
                                        ("0", False), ("off", False), ("No", False), ("", False)])
def test_fast_accepts_the_listed_values(monkeypatch, value, fast):
    monkeypatch.setenv("POSTERIOR_TUTOR_FAST", value)
    monkeypatch.setenv("CI", "")
    assert pt.fast_mode() is fast


def test_fast_off_wins_over_ci_and_an_odd_ci_is_not_fast(monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_FAST", "0")
    monkeypatch.setenv("CI", "true")
    assert pt.fast_mode() is False
    monkeypatch.delenv("POSTERIOR_TUTOR_FAST")
    assert pt.fast_mode() is True
    monkeypatch.setenv("CI", "woodpecker")  # CI services set names: not ours to refuse
    assert pt.fast_mode() is False


@pytest.mark.parametrize("value", ["banana", "2", "quiet"])
def test_progress_with_a_bad_value_warns_once_and_falls_back_to_automatic(monkeypatch, value):
    monkeypatch.setenv("POSTERIOR_TUTOR_PROGRESS", value)
    with pytest.warns(UserWarning, match=f"POSTERIOR_TUTOR_PROGRESS='{value}' is not a yes/no "
                                         f"value; accepted: {ACCEPTED}.*automatic"):
        assert progress.wanted() is False  # automatic: off under pytest
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # parsed once: no second warning
        assert progress.wanted() is False and progress.wanted(True) is True


@no_mps
def test_mps_without_mps_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_DEVICE", "mps")
    with pytest.raises(ValueError, match=r"POSTERIOR_TUTOR_DEVICE='mps' asks for Apple's MPS but "
                                         r"torch sees no MPS device here.*present devices: cpu"):
        pt.default_device()


@pytest.mark.parametrize("value,match", [
    ("gpu-please", "is not a device torch knows"),
    ("meta", "posterior_tutor runs on 'cpu', 'cuda\\[:N\\]' or 'mps'; present here: cpu"),
])
def test_unknown_devices_name_the_present_ones(monkeypatch, value, match):
    monkeypatch.setenv("POSTERIOR_TUTOR_DEVICE", value)
    with pytest.raises(ValueError, match=f"POSTERIOR_TUTOR_DEVICE='{value}'.*{match}"):
        pt.default_device()


@pytest.mark.parametrize("value", [3, 1.5, ["cpu"]])
def test_resolve_device_refuses_non_names(value):
    with pytest.raises(ValueError, match=r"--device=.* is a .*; give a device name"):
        config.resolve_device(value)


@no_cuda
def test_cuda_lists_the_present_devices(monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_DEVICE", "cuda:1")
    with pytest.raises(ValueError, match=r"torch sees no CUDA device here.*Present: cpu"):
        pt.default_device()


@no_cuda
def test_pretrained_on_cuda_without_one_is_a_clear_error():
    with pytest.raises(ValueError, match=r"device='cuda' asks for CUDA but torch sees no CUDA"):
        pt.pretrained("digits", device="cuda")


@no_mps
def test_pretrained_on_mps_without_one_is_a_clear_error():
    with pytest.raises(ValueError, match=r"device='mps' asks for Apple's MPS"):
        pt.pretrained("digits", device="mps")


def test_runs_folder_naming_a_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "f.txt").write_text("x")
    monkeypatch.setenv("POSTERIOR_TUTOR_RUNS", str(tmp_path / "f.txt"))
    with pytest.raises(FileExistsError, match=r"POSTERIOR_TUTOR_RUNS=.*f.txt' names a file"):
        config.folder_setting("POSTERIOR_TUTOR_RUNS")
