"""Checkpoints: reading them safely, and finding the shipped ones under data/.

Every checkpoint is read with ``torch.load(weights_only=True)`` (no code runs from the file) and
verified: against the checksum embedded in it (``safe_io``: every file written by this version)
and, for a shipped one, against the sha256 in the ``model_card.json`` beside it.  Errors say what
is wrong and what to do: missing, empty, truncated or corrupt file, checksum mismatch, unreadable
card, architecture mismatch.

    den = load_prior("data/mnist_prior/prior.pt")   # a prior.pt as a Denoiser, sha256-checked
    den = pt.pretrained("mnist")                    # the same, by name: the table of shipped
                                                    # files and its lookup are ``shipped.py``
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..denoisers import EpsNetDenoiser
from ..runtime.config import folder_setting
from .resources import root
from .safe import CheckpointError, read_card, verify, write
from .safe import load as load_file
from ..schedules import VPSchedule


def save_atomic(obj, path) -> None:
    """torch.save with a content checksum, through a temporary file, fsync and a rename: a crash
    mid-write never leaves a half-written checkpoint behind (``safe_io.write``)."""
    write(obj, path)


def read_checkpoint(path, sha256: str | None = None) -> dict:
    """torch.load(weights_only=True) with clear errors; checks the sha256 of the whole file when
    one is given (a shipped file, from its card) and the checksum embedded in the file (every
    file written by this version: ``safe_io``)."""
    path = Path(path)
    if sha256 is not None and path.is_file():
        got = file_sha256(path)
        if got != sha256:
            raise CheckpointError(f"checksum mismatch for {path}: sha256 {got[:16]}..., expected "
                                  f"{sha256[:16]}... The file is corrupt or was replaced; restore it "
                                  "(git checkout data/) or retrain it.")
    ckpt = verify(load_file(path), path, warn=sha256 is None)
    if "config" not in ckpt:
        raise CheckpointError(f"{path} is not a posterior_tutor checkpoint (no 'config' entry).")
    return ckpt


def load_state(net: torch.nn.Module, state: dict, path) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        lines = [s.strip() for s in str(err).splitlines()[1:4]]
        raise CheckpointError(f"architecture mismatch loading {path}: the weights do not fit the "
                              f"network built from its config ({'; '.join(lines)[:300]}).") from None


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_verified(path, check: bool = True, what: str = "checkpoint") -> tuple[dict, dict]:
    """``read_checkpoint`` of a file whose ``model_card.json`` lies beside it: returns (checkpoint,
    card).  With ``check=True`` the card must exist and its sha256 must match the file."""
    path = Path(path)
    card_path = path.parent / "model_card.json"
    card = read_card(card_path, require_sha256=check) if card_path.is_file() else None
    if check and card is None:
        raise CheckpointError(f"{card_path} is missing, so {path} cannot be verified; pass "
                              f"check=False to load an unverified {what}.")
    ckpt = read_checkpoint(path, card["sha256"] if check else None)
    return ckpt, card or {}


def load_prior(path, check: bool = True):
    """The EMA network of a ``prior.pt`` as a Denoiser (EpsNetDenoiser).  With ``check=True`` the
    file's sha256 must match the ``model_card.json`` beside it."""
    ckpt, card = read_verified(path, check)
    cfg = ckpt["config"]
    shape = tuple(ckpt["shape"])
    from ..nets import UNet
    net = UNet(shape[0], channels=tuple(cfg["channels"]), attention=cfg["attention"],
               dropout=cfg["dropout"])
    load_state(net, ckpt["ema"], path)
    den = EpsNetDenoiser(net.eval().requires_grad_(False), VPSchedule(), shape=shape)
    den.card = card
    return den


def prior_fingerprint(den, shape) -> torch.Tensor:
    """The prior's output on a fixed probe (4 signals, seed 0, at t = T/2): tells priors apart, so
    that a sampler trained on one prior (UD2M, APS) refuses another.  Taken without the
    denoiser's output clipping (``den.clip``), which is a setting, not a prior."""
    dev = getattr(den, "device", torch.device("cpu"))
    probe = torch.randn((4, *shape), generator=torch.Generator().manual_seed(0)).to(dev)
    t = torch.full((4,), den.schedule.T // 2, dtype=torch.long, device=dev)
    clip = getattr(den, "clip", None)
    try:
        if clip is not None:
            den.clip = None
        with torch.no_grad():
            return den._x0(probe, t).detach().float()
    finally:
        if clip is not None:
            den.clip = clip


def check_trained_on(den, shape, fingerprint, path) -> None:
    """Refuse a prior that is not the one the sampler saved at ``path`` was trained on: the
    signal shape first, then the output on the fingerprint's probe (``prior_fingerprint``)."""
    if den.shape is not None and tuple(den.shape) != tuple(shape):
        raise CheckpointError(f"{path} was trained for signals of shape {tuple(shape)}, "
                              f"this prior models {tuple(den.shape)}.")
    if fingerprint is not None:
        got = prior_fingerprint(den, shape).cpu()
        if got.shape != fingerprint.shape or (got - fingerprint).norm() > \
                1e-3 * (1 + fingerprint.norm()):
            raise CheckpointError(f"{path} was trained on a different prior: the prior's output on "
                                  "a fixed probe does not match. Load it with the prior it was "
                                  "trained on.")


def checkpoint_dir() -> Path:
    """The shipped checkpoints: POSTERIOR_TUTOR_CHECKPOINTS when set, else ``data/`` of the
    checkout or of the installed package (``resources.root("data")``)."""
    return folder_setting("POSTERIOR_TUTOR_CHECKPOINTS") or root("data")


def shipped_path(folder: str, filename: str, what: str, retrain: str | None = None) -> Path:
    """``data/<folder>/<filename>`` of the shipped checkpoints, or a CheckpointError saying how to
    get it back (``retrain``: how to rebuild it; default: the command in its folder's README)."""
    path = checkpoint_dir() / folder / filename
    if not path.is_file():
        retrain = retrain or f"the command in data/{folder}/README.md"
        raise CheckpointError(f"the shipped {what} is missing ({path}); it comes with the "
                              f"repository (git checkout data/) and the package (pip install "
                              f"--force-reinstall posterior_tutor), or retrain it with {retrain}.")
    return path

