"""The trained-sampler family's shape (posterior_tutor/trained): small files, short functions, one
public entry point (pt.ud2m is the package), and NFE counted on the prior's counters."""
import ast
from pathlib import Path

import pytest
import torch

import posterior_tutor as pt
import posterior_tutor.trained.ud2m as ud2m
from conftest import seeded

TRAINED = Path(pt.__file__).parent / "trained"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 320, 80


def _files():
    files = sorted(TRAINED.rglob("*.py"))
    assert len(files) >= 10, files   # base, the ud2m package and its eight role files
    return files


def test_no_file_over_320_lines():
    long = {f.relative_to(TRAINED).as_posix(): n for f in _files()
            if (n := len(f.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, long


def test_no_function_over_80_lines():
    long = {}
    for f in _files():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{f.relative_to(TRAINED).as_posix()}:{node.name}"] = n
    assert not long, long


def test_every_file_opens_with_a_docstring():
    missing = [f.name for f in _files() if not ast.get_docstring(ast.parse(f.read_text()))]
    assert not missing, missing


def test_pt_ud2m_is_the_trained_package_and_the_old_modules_re_export_it():
    from posterior_tutor import ud2m_presets, unfolding
    assert pt.ud2m is ud2m
    assert pt.ud2m.train is ud2m.train and pt.ud2m.pretrained is ud2m.pretrained
    assert unfolding.UD2MSampler is ud2m.UD2MSampler and unfolding.train is ud2m.train
    assert ud2m_presets.sigma_primes is ud2m.presets.sigma_primes
    assert issubclass(ud2m.UD2MSampler, pt.trained.base.TrainedSampler)


def test_sample_counts_its_calls_on_the_priors_counters():
    """The adapted network counts its calls; sample adds them to the prior's (what the benchmark
    reads), so a trained sampler needs no special case there."""
    den = pt.pretrained("mnist")
    ud = pt.ud2m.pretrained("mnist-sr4", den)
    y = ud.problem.measure(torch.zeros(1, 32, 32), generator=seeded(0))
    den.reset_counters()
    ud.sample(y, 1, generator=seeded(1))
    assert den.nfe == ud.nfe_per_sample == ud.K * ud.N and den.nfe_grad == 0
    from posterior_tutor.bench_images import trained_runners
    den.reset_counters()
    (run,) = trained_runners("ud2m", "sr4", den).values()
    xs = run(ud.problem, y, 2, seeded(1))
    assert xs.shape == (2, 1, 32, 32) and den.nfe == ud.K * ud.N


def test_pretrained_by_kind_is_the_methods_own():
    den = pt.pretrained("mnist")
    assert set(pt.trained.shipped()) == {"ud2m", "aps"}
    assert pt.trained.shipped()["ud2m"] == tuple(pt.ud2m.SHIPPED)
    ud = pt.trained.pretrained("ud2m", "mnist-sr4", den)
    assert isinstance(ud, pt.ud2m.UD2MSampler) and ud.prior is den and ud.card["task"] == "sr4"
    flow = pt.trained.pretrained("aps", "mnist-sr4", den)
    assert type(flow) is pt.aps.APSSampler
    with pytest.raises(ValueError, match="unknown trained-sampler kind 'vae'"):
        pt.trained.pretrained("vae", "mnist-sr4", den)
    with pytest.raises(ValueError, match="unknown shipped ud2m sampler 'mnist-denoising'"):
        pt.trained.pretrained("ud2m", "mnist-denoising", den)


def test_a_checkpoint_of_another_kind_is_refused_before_anything_is_built():
    den = pt.pretrained("mnist")
    aps_like = {"format": "posterior_tutor.aps/1", "config": {}, "adapter": {}, "log_lambda": 0}
    with pytest.raises(pt.checkpoints.CheckpointError,
                       match="f.pt is not a UD2M sampler checkpoint .*'posterior_tutor.aps/1'"):
        pt.ud2m.UD2MSampler.from_checkpoint(aps_like, den, path="f.pt")
    no_adapter = {"format": pt.ud2m.FORMAT, "config": {}, "log_lambda": 0}
    with pytest.raises(pt.checkpoints.CheckpointError, match="not a UD2M sampler checkpoint"):
        pt.ud2m.UD2MSampler.from_checkpoint(no_adapter, den, path="f.pt")
