"""Shared test helpers and fixtures.

``seeded(seed)`` is the one way tests make a CPU generator (``from conftest import seeded``);
``load_script(name)`` imports ``scripts/<name>.py`` as a module (scripts are not a package);
``interrupt_prior_training`` stops a prior training at a given step as a Ctrl-C would;
the ``toy`` fixture is the 2D bimodal problem with its exact denoiser, built once per session (a
module may define its own ``toy`` with more in it; pytest then uses the module's)."""
import importlib.util
from pathlib import Path

import pytest
import torch

import posterior_tutor as pt


def seeded(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def load_script(name: str):
    """``scripts/<name>.py`` (or a path to any script file) imported as a module."""
    path = Path(name) if str(name).endswith(".py") else SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="session")
def toy():
    """(the 2D bimodal toy problem, its exact Tweedie denoiser)."""
    tp = pt.toy.bimodal_problem_2d()
    return tp, tp.prior.denoiser(pt.VPSchedule())


def interrupt_prior_training(monkeypatch, cfg, step: int) -> None:
    """Run ``train.train_prior(cfg)`` and interrupt it (KeyboardInterrupt, as a Ctrl-C) when it
    reaches ``step``, leaving its checkpoints behind; the training code is restored afterwards."""
    from posterior_tutor.priors import train
    real = train.batch_for_step

    def crash(c, at, *a, **k):
        if at == step:
            raise KeyboardInterrupt
        return real(c, at, *a, **k)
    monkeypatch.setattr(train, "batch_for_step", crash)
    with pytest.raises(KeyboardInterrupt):
        train.train_prior(cfg, progress=False)
    monkeypatch.setattr(train, "batch_for_step", real)
