"""Training on two processes (torchrun, gloo on the CPU) trains the model one process trains on the
same global batch (``posterior_tutor.runtime.distributed``), for UD2M (LoRA adapters, lambda and
the discriminator, both optimisers, a resume from a checkpoint) and for APS (the flow).

One process with ``shards=2`` draws the two shards of each global batch that two processes draw
(one each) and accumulates their gradients; the two processes average theirs by an all-reduce.
Run as ``torchrun --nproc_per_node 2 tests/trained/test_distributed.py --worker OUT`` by the test.
"""
import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.files.run_checkpoint import RunCheckpoint
from posterior_tutor.runtime import distributed
from conftest import load_script

TOL = 1e-5
SHAPE = (1, 8, 8)


def _prior():
    torch.manual_seed(0)
    net = pt.nets.UNet(1, (8, 16), attention=False)
    torch.nn.init.normal_(net.out[-1].weight, std=0.02)
    return pt.EpsNetDenoiser(net.requires_grad_(False), pt.VPSchedule(), shape=SHAPE)


def _problem():
    return pt.InverseProblem(pt.operators.Inpainting.random(SHAPE, 0.5,
                                                            generator=torch.Generator().manual_seed(1)), 0.05)


def _ud2m(checkpoint=None, **kw):
    xs = torch.rand((16, *SHAPE), generator=torch.Generator().manual_seed(2)) * 2 - 1
    opts = {**dict(steps=4, batch=4, lr=1e-2, K=1, N=2, adv_weight=1.0, gp_weight=0.1), **kw}
    return pt.ud2m.train(_prior(), _problem(), xs, generator=torch.Generator().manual_seed(3),
                         progress=False, checkpoint=checkpoint, checkpoint_every=2, **opts)


def _ud2m_weights(ud):
    return {**{f"adapter.{k}": v for k, v in ud.denoiser.adapter_state().items()},
            "log_lam": ud.log_lam.detach(),
            **{f"disc.{k}": v for k, v in ud.discriminator.state_dict().items()}}


def _aps(**kw):
    tp = pt.toy.bimodal_problem_2d()
    xs = tp.prior.sample(64, generator=torch.Generator().manual_seed(4))
    ys = tp.problem.operator(xs) + tp.problem.sigma * torch.randn(
        (64, 1), generator=torch.Generator().manual_seed(5))
    opts = {**dict(steps=3, batch=8, lr=1e-2, transforms=1, hidden=8), **kw}
    return pt.aps.train(tp.prior.denoiser(pt.VPSchedule()), tp.problem, ys,
                        generator=torch.Generator().manual_seed(6), progress=False, **opts)


class _Stop(Exception):
    pass


def _interrupted_at_2(folder):
    """A one-process, two-shard UD2M run killed after its checkpoint at step 2."""
    class Killed(RunCheckpoint):
        def step_done(self, step, total):
            super().step_done(step, total)
            if step == 2:
                raise _Stop
    with pytest.raises(_Stop):
        _ud2m(Killed(folder, 2), shards=2)


def _worker(out: Path) -> None:
    """One of two processes: resume the interrupted UD2M run, train APS, try a batch of 3."""
    from posterior_tutor.files import run_checkpoint
    torch.set_num_threads(1)
    r, w = distributed.init("cpu")
    assert w == 2
    if r != 0:   # only rank 0 writes checkpoints
        run_checkpoint.write = lambda *a, **k: (_ for _ in ()).throw(AssertionError("rank 1 wrote"))
    ud = _ud2m(out / "ud2m_run")
    fl = _aps()
    try:
        _aps(batch=3)
        refusal = ""
    except ValueError as err:
        refusal = str(err)
    if r == 0:
        torch.save({"ud2m": _ud2m_weights(ud), "ud2m_losses": ud.losses,
                    "aps": fl.flow.state_dict(), "aps_losses": fl.losses, "refusal": refusal},
                   out / "two.pt")
    distributed.finish()


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(env, tmp_path):
    """The two workers; a second try on a fresh port when the first could not rendezvous (the port
    chosen by _free_port can be taken by another process before torchrun binds it)."""
    for attempt in range(2):
        res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                              "--master_port", str(_free_port()), __file__, "--worker",
                              str(tmp_path)], env=env, capture_output=True, text=True, timeout=240)
        if res.returncode == 0 or not any(s in res.stderr for s in _RENDEZVOUS_FAILURES):
            return res
        print(f"try {attempt + 1}: torchrun could not rendezvous; trying another port")
    return res


_RENDEZVOUS_FAILURES = ("EADDRINUSE", "address already in use", "Address already in use",
                        "RendezvousConnectionError", "DistNetworkError")


def _failure(res) -> str:
    """The workers' error, first lines and last (a traceback's cause is at its end)."""
    err = res.stderr.strip().splitlines()
    keep = err if len(err) <= 60 else err[:15] + ["..."] + err[-45:]
    return f"torchrun exited with {res.returncode}:\n" + "\n".join(keep)


def test_two_processes_train_what_one_process_trains(tmp_path):
    torch.set_num_threads(1)
    one_ud = _ud2m(tmp_path / "one_run", shards=2)          # uninterrupted, one process
    one_fl = _aps(shards=2)
    _interrupted_at_2(tmp_path / "ud2m_run")                # the two processes resume this one
    # tests/ first, so that the workers' `import conftest` is tests/conftest.py (not the root's)
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([tests_dir, *sys.path])}
    res = _torchrun(env, tmp_path)
    assert res.returncode == 0, _failure(res)
    two = torch.load(tmp_path / "two.pt", weights_only=False)
    a, b = _ud2m_weights(one_ud), two["ud2m"]
    assert any(k.startswith("disc.") for k in a) and any(".lora_" in k for k in a)
    d_ud2m, d_aps = _max_diff(a, b), _max_diff(one_fl.flow.state_dict(), two["aps"])
    print(f"max |one process - two processes|: UD2M {d_ud2m:.2e}, APS {d_aps:.2e}")
    assert d_ud2m < TOL, "UD2M: two processes differ from one"
    assert d_aps < TOL, "APS: two processes differ from one"
    assert two["ud2m_losses"] == pytest.approx(one_ud.losses, rel=1e-5)
    assert two["aps_losses"] == pytest.approx(one_fl.losses, rel=1e-5)
    assert "divisible by the number of processes (2)" in two["refusal"]
    # the comparison is not trivially true: the runs moved the weights and the shards matter
    start = _ud2m_weights(_ud2m(steps=0))
    assert _max_diff(a, {k: start[k] for k in a}) > 1e-3
    plain = _aps()                                        # one shard of 8: another batch
    assert _max_diff(plain.flow.state_dict(), two["aps"]) > 1e-4


def test_one_process_with_one_shard_keeps_the_plain_run():
    """shards=1 on one process is the loop as before (no shard generators): the same flow."""
    assert _max_diff(_aps().flow.state_dict(), _aps(shards=1).flow.state_dict()) == 0.0


def test_bad_shards_and_precision_are_refused():
    with pytest.raises(ValueError, match=r"global batch \(8\) must be divisible by the number "
                                         r"of shards \(3\)"):
        _aps(shards=3)
    with pytest.raises(ValueError, match="shards must be an integer >= 1"):
        _aps(shards=0)
    with pytest.raises(ValueError, match="bf16.*CUDA only.*cpu"):
        _ud2m(precision="bf16", steps=1)
    with pytest.raises(ValueError, match="precision must be one of"):
        _aps(precision="fp16")


def test_resume_with_other_shards_is_refused_and_a_sharded_sampler_loads(tmp_path):
    _interrupted_at_2(tmp_path / "run")
    with pytest.raises(pt.files.checkpoints.CheckpointError, match="shards"):
        _ud2m(tmp_path / "run")             # one process, one shard: another run
    ud = _ud2m(shards=2, steps=1)
    back = pt.ud2m.UD2MSampler.load(ud.save(tmp_path / "s.pt"), ud.den)
    assert back.config["shards"] == 2
    assert _max_diff(ud.denoiser.adapter_state(), back.denoiser.adapter_state()) == 0


@pytest.mark.parametrize("script", ["train_ud2m_mnist", "train_aps_mnist"])
@pytest.mark.parametrize("argv, world, flag, says", [
    (["--batch", "6"], "4", "--batch", "global batch (6) must be divisible by the number of "
                                       "processes (4)"),
    (["--batch", "8", "--shards", "3"], "2", "--shards", "multiple of the number of processes"),
    (["--batch", "8", "--shards", "3"], "1", "--batch", "divisible by the number of shards (3)"),
    (["--shards", "0"], "1", "--shards", "not a positive integer"),
    (["--precision", "bf16", "--device", "cpu"], "1", "--precision", "CUDA only")])
def test_the_commands_refuse_a_layout_that_does_not_fit(script, argv, world, flag, says, tmp_path,
                                                         monkeypatch, capsys):
    """One line, exit code 2, before any work (pt.pretrained, the first step, is never reached)."""
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setattr(pt, "pretrained", lambda *a, **k: pytest.fail("started work"))
    with pytest.raises(SystemExit) as stop:
        load_script(script).main(["--task", "sr4", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and f"argument {flag}: " in err[-1] and says in err[-1], err


@pytest.mark.parametrize("script", ["train_ud2m_mnist", "train_aps_mnist"])
def test_the_commands_refuse_a_broken_torchrun_environment(script, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pt, "pretrained", lambda *a, **k: pytest.fail("started work"))
    main = load_script(script).main
    argv = ["--task", "sr4", "--out", str(tmp_path / "o"), "--device", "cpu", "--batch", "8"]
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and "WORLD_SIZE='two' is not an integer" in \
        capsys.readouterr().err.strip().splitlines()[-1]
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit, match=r"^error: WORLD_SIZE=2 but RANK is not set: start the "
                                         r"processes with torchrun"):
        main(argv)


# -- bf16 autocast, on fake CUDA (tests/core/test_fake_cuda.py: what the fake mode can and cannot do)
FAKE = load_script(Path(__file__).parents[1] / "core" / "test_fake_cuda.py")
fake_cuda = FAKE.fake_cuda


def _bf16():
    """``distributed.autocast("bf16", "cuda")``, built as on a GPU (torch asks the driver whether
    CUDA and bf16 are there when the context is made, not when it runs)."""
    with mock.patch("torch.cuda.is_available", lambda: True), \
            mock.patch("torch.cuda.is_bf16_supported", lambda *a, **k: True):
        return distributed.autocast("bf16", "cuda")


def _output_dtypes(net):
    seen = []
    net.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    return seen


def test_bf16_autocast_runs_the_training_forward_passes_on_fake_cuda(fake_cuda):
    """Both trainers' forward losses under precision="bf16": the networks run in bfloat16, the
    losses come out finite-typed on CUDA, the weights stay float32 (the backward: gpu_check.sh)."""
    problems = FAKE._problems()
    prob, sr = problems["inpainting"], problems["sr"]
    y_shape = sr.operator.output_shape_for(FAKE.SHAPE)
    ud = FAKE._untrained_ud2m(FAKE._unet_prior(), prob)
    fl = pt.aps.train(FAKE._unet_prior(), sr, torch.randn(8, *y_shape), steps=1, batch=2,
                      progress=False)
    with fake_cuda():
        FAKE._move_ud2m(ud)
        fl.den.net.to("cuda")
        fl.flow.to("cuda")
        unet, prior = _output_dtypes(ud.denoiser.inner.net), _output_dtypes(fl.den.net)
        x0 = torch.rand(4, *FAKE.SHAPE, device="cuda") * 2 - 1
        y = torch.randn(2, *y_shape, device="cuda")
        with torch.enable_grad(), _bf16():
            ys = pt.ud2m.measure_batch(prob, x0)
            total, _, x_hat = pt.ud2m.sampler_loss(ud, prob, x0, ys, ud.grid[0], dict(
                adv_weight=1.0, lpips_weight=0.0, x0_weighting="uniform"))
            d_loss = pt.ud2m.discriminator_loss(
                ud.discriminator, x0, x_hat, pt.ud2m.discriminator_features(prob, ys, FAKE.SHAPE),
                0.0)                                    # R1 needs autograd: not on fake CUDA
            a_loss, _ = pt.aps.aps_loss(fl, sr, y, 1.0, "elbo")
    assert unet and set(unet) == {torch.bfloat16} and prior and set(prior) == {torch.bfloat16}
    for loss in (total, d_loss, a_loss):
        FAKE._on_cuda(loss)
    assert {p.dtype for p in ud.trainable_parameters() + list(fl.flow.parameters())} == \
        {torch.float32}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_trains_ud2m_on_a_gpu():
    """On CUDA (scripts/gpu_check.sh runs it), precision="bf16" trains: finite losses, float32
    weights that moved, and a first loss within 10% of the fp32 run's (same weights, same draws)."""
    def run(precision):
        den = _prior()
        den.net.to("cuda")
        xs = (torch.rand((16, *SHAPE), generator=torch.Generator().manual_seed(2)) * 2 - 1).cuda()
        return pt.ud2m.train(den, _problem(), xs, generator=torch.Generator("cuda").manual_seed(3),
                             steps=3, batch=4, lr=1e-2, K=1, N=2, adv_weight=1.0, progress=False,
                             precision=precision)
    fp32, bf16 = run("fp32"), run("bf16")
    assert all(torch.isfinite(torch.tensor(bf16.losses)))
    assert {p.dtype for p in bf16.trainable_parameters()} == {torch.float32}
    assert bf16.losses[0] == pytest.approx(fp32.losses[0], rel=0.1)
    assert float(bf16.log_lam.detach().abs().max()) > 0     # lambda moved from exp(0) = 1


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(Path(sys.argv[2]))
