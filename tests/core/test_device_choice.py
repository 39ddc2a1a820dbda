"""One device switch: pt.default_device() for chapters, --device for the training scripts."""
import pytest
import torch

import posterior_tutor as pt
from conftest import load_script

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")


def test_default_device_follows_the_environment(monkeypatch):
    monkeypatch.delenv("POSTERIOR_TUTOR_DEVICE", raising=False)
    assert pt.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("POSTERIOR_TUTOR_DEVICE", "cpu")
    assert pt.default_device() == torch.device("cpu")
    monkeypatch.setenv("POSTERIOR_TUTOR_DEVICE", "gpu-please")
    with pytest.raises(ValueError, match="POSTERIOR_TUTOR_DEVICE='gpu-please' is not a device"):
        pt.default_device()


@no_cuda
def test_asking_for_cuda_without_one_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_DEVICE", "cuda")
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        pt.default_device()


@no_cuda
@pytest.mark.parametrize("name,task", [("train_ud2m_mnist", "sr4"), ("train_aps_mnist", "sr4")])
def test_training_scripts_take_device(name, task, tmp_path):
    script = load_script(name)
    a, _ = script.parse_args(["--task", task, "--out", str(tmp_path), "--device", "cpu"])
    assert str(a.device) == "cpu"   # a torch.device, checked when parsed
    with pytest.raises(SystemExit, match="^2$"):   # the message: test_cli_bad_input.py
        script.main(["--task", task, "--out", str(tmp_path), "--device", "cuda"])
