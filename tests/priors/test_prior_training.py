"""The training command: checkpoints, resume after interruption, DDP equivalence, safe loading."""
import dataclasses
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.files import checkpoints
from posterior_tutor.priors import train
from posterior_tutor.files.checkpoints import CheckpointError
from conftest import interrupt_prior_training
from conftest import seeded

TINY = dict(data="digits", size=8, channels=(8, 16), attention=False, batch=8, lr=2e-3, warmup=2,
            ckpt_every=4, seed=3)


def _cfg(tmp_path, name="run", **kw):
    return train.TrainConfig(**{**TINY, "steps": 10, "out": str(tmp_path / name), **kw})


def _weights(path):
    return torch.load(path, weights_only=True)["net"]


def _max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_train_writes_card_and_loads_as_denoiser(tmp_path):
    path = train.train_prior(_cfg(tmp_path), progress=False)
    card = json.loads((path.parent / "model_card.json").read_text())
    assert card["sha256"] == checkpoints.file_sha256(path)
    assert card["steps"] == 10 and card["n_train"] == 1797 and card["hardware"]
    den = checkpoints.load_prior(path)
    assert den.shape == (1, 8, 8) and not any(p.requires_grad for p in den.net.parameters())
    xs = pt.sample("ddpm", den, None, None, n=3, steps=5, generator=seeded(0))
    assert xs.shape == (3, 1, 8, 8) and torch.isfinite(xs).all()


def test_resume_after_interruption_gives_the_same_model(tmp_path, monkeypatch):
    straight = train.train_prior(_cfg(tmp_path, "straight"), progress=False)
    cfg = _cfg(tmp_path, "interrupted")
    interrupt_prior_training(monkeypatch, cfg, step=7)
    saved = torch.load(tmp_path / "interrupted" / "last.pt", weights_only=True)
    assert saved["step"] == 4  # at most one checkpoint interval (4 steps) lost
    resumed = train.train_prior(cfg, progress=False)
    assert _max_diff(_weights(straight.parent / "last.pt"), _weights(resumed.parent / "last.pt")) < 1e-6


def test_resume_refuses_a_different_run(tmp_path):
    train.train_prior(_cfg(tmp_path, steps=4), progress=False)
    with pytest.raises(CheckpointError, match="seed=3.*seed=4"):
        train.train_prior(_cfg(tmp_path, steps=8, seed=4), progress=False)


@pytest.mark.slow
def test_two_processes_train_the_same_model_as_one(tmp_path):
    """torchrun --nproc_per_node=2 (DDP, gloo on CPU), each process half of the global batch."""
    args = ["--data", "digits", "--size", "8", "--channels", "8,16", "--attention", "false",
            "--steps", "5", "--batch", "8", "--lr", "2e-3", "--no-progress", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "posterior_tutor.priors.train", *args, "--out",
                          str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--master_port", str(_free_port()), "-m", "posterior_tutor.priors.train", *args, "--out",
                          str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = _weights(tmp_path / "one" / "last.pt"), _weights(tmp_path / "two" / "last.pt")
    assert _max_diff(a, b) < 1e-5
    card = json.loads((tmp_path / "two" / "model_card.json").read_text())
    assert card["processes"] == 2
    # and the run really moved the weights (so the comparison is not trivially true)
    init = train.build_unet(train.TrainConfig(**{**TINY, "attention": False}))
    torch.manual_seed(0)
    assert _max_diff(a, init.state_dict()) > 1e-3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_global_batch_must_split_evenly():
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        train.batch_for_step(train.TrainConfig(batch=9), 0, 100, (1, 8, 8), 1000, rank=0, world=2)


def test_learning_rate_warmup_then_cosine():
    cfg = train.TrainConfig(lr=1.0, warmup=10, steps=110)
    lrs = [train.learning_rate(cfg, s) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match=r"\[-1, 1\].*127.5"):
        train.check_image_range(torch.rand(4, 1, 8, 8) * 255)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        train.train_denoiser(pt.nets.UNet(1, (8, 16)), torch.rand(4, 1, 8, 8) * 255, steps=1)
    with pytest.raises(ValueError, match="NaN"):
        train.check_image_range(torch.full((2, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        train.check_image_range(torch.zeros(4, 64))


@pytest.fixture
def trained(tmp_path):
    path = train.train_prior(_cfg(tmp_path, steps=2), progress=False)
    return path


def test_truncated_checkpoint(trained, tmp_path):
    bad = tmp_path / "cut.pt"
    bad.write_bytes(trained.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoints.read_checkpoint(bad)


def test_checksum_mismatch(trained):
    card = trained.parent / "model_card.json"
    meta = json.loads(card.read_text())
    meta["sha256"] = "0" * 64
    card.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        checkpoints.load_prior(trained)


def test_architecture_mismatch(trained):
    ckpt = torch.load(trained, weights_only=True)
    ckpt["config"]["channels"] = [16, 32]
    torch.save(ckpt, trained)    # edited behind the package's back: its checksum no longer fits
    with pytest.raises(CheckpointError, match="is corrupt.*checksum"):
        checkpoints.load_prior(trained, check=False)
    from posterior_tutor.files import safe as safe_io
    safe_io.write(ckpt, trained)  # written with a fresh checksum: the architecture check speaks
    with pytest.raises(CheckpointError, match="architecture mismatch"):
        checkpoints.load_prior(trained, check=False)


def test_missing_card_and_unknown_pretrained(trained, tmp_path, monkeypatch):
    (trained.parent / "model_card.json").unlink()
    with pytest.raises(CheckpointError, match="cannot be verified"):
        checkpoints.load_prior(trained)
    with pytest.raises(ValueError, match="unknown pretrained prior 'cifar'.*mnist"):
        pt.pretrained("cifar")
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match="missing"):
        pt.pretrained("mnist")


def test_pickled_code_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    path = tmp_path / "evil.pt"
    torch.save({"config": {}, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        checkpoints.read_checkpoint(path)


def test_wrong_image_size_for_a_prior(trained):
    den = checkpoints.load_prior(trained)
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\).*\(2, 1, 16, 16\)"):
        den(torch.zeros(2, 1, 16, 16), 10)


@pytest.mark.parametrize("name,shape", [("digits", (1, 16, 16)), ("mnist", (1, 32, 32))])
def test_shipped_priors(name, shape):
    path = checkpoints.checkpoint_dir() / f"{name}_prior" / "prior.pt"
    if not path.exists():
        pytest.skip(f"{path} not shipped yet")
    assert path.stat().st_size < 20e6
    den = pt.pretrained(name)
    assert den.shape == shape
    xs = pt.sample("ddpm", den, None, None, n=2, steps=10, generator=seeded(0))
    assert xs.shape == (2, *shape) and torch.isfinite(xs).all()


def test_model_card_reports_fd_next_to_floors(tmp_path):
    from posterior_tutor.evaluation import model_card
    cfg = train.TrainConfig(**{**TINY, "size": None, "subset": "0:1500", "steps": 2,
                               "out": str(tmp_path / "digits_prior")})
    path = train.train_prior(cfg, progress=False)
    sha = checkpoints.file_sha256(path)
    quality = model_card.evaluate(path.parent, "digits", n=100, steps=3)
    model_card.write_card(path.parent, "digits", quality)
    card = json.loads((path.parent / "model_card.json").read_text())
    floor = min(v["fd"] for k, v in card["quality"]["floors"].items() if "noise" not in k)
    # two training steps give noise-like samples: far above the real-vs-real floor
    assert card["quality"]["fd_samples_vs_heldout"] > 5 * floor
    assert card["sha256"] == sha == checkpoints.file_sha256(path)  # weights untouched
    text = (path.parent / "README.md").read_text()
    assert "prior samples vs held-out" in text and (path.parent / "samples.png").stat().st_size > 0
