"""Files that survive crashes and say when they are damaged (issue 22, deliverables 4 and 5): the
embedded checksum, empty / corrupt / unparsable files, last.pt -> prev.pt (the newest complete file
in place at every instant: issue 28), resumes that keep their settings, and kill -9 of a prior
training and of a UD2M training mid-run, at a point the child signals (no timing involved)."""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.files import checkpoints
from posterior_tutor.files import safe as safe_io
from posterior_tutor.priors import train
from posterior_tutor.files.checkpoints import CheckpointError
from conftest import interrupt_prior_training, load_script, seeded as _gen

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(data="digits", size=8, channels=(8, 16), attention=False, batch=8, lr=2e-3, warmup=2,
            ckpt_every=4, seed=3)


def _flip(path, at=None):
    """Flip every bit of one byte of ``path`` (default: the middle of the file)."""
    data = bytearray(Path(path).read_bytes())
    at = len(data) // 2 if at is None else at
    data[at] ^= 0xFF
    Path(path).write_bytes(bytes(data))


def _state():
    g = _gen(0)
    return {"config": {"a": 1, "ch": (8, 16)}, "w": torch.randn(64, 64, generator=g),
            "opt": {"state": {0: {"step": torch.tensor(3.0)}}, "lr": [1e-3, None]}}


# -- the checksum ---------------------------------------------------------------------------------
def test_any_flipped_byte_is_refused_or_loads_bitwise_what_was_saved(tmp_path):
    path = safe_io.write(_state(), tmp_path / "c.pt")
    clean = path.read_bytes()
    refused = intact = 0
    for at in range(0, len(clean), max(1, len(clean) // 300)):
        path.write_bytes(clean)
        _flip(path, at)
        try:
            back = checkpoints.read_checkpoint(path)
        except CheckpointError as err:
            assert "corrupt" in str(err) or "truncated" in str(err), err
            refused += 1
            continue
        assert safe_io.content_sha256(back) == safe_io.content_sha256(_state())  # padding byte
        intact += 1
    # measured: 287 refused, 14 intact (bytes with no content: zip padding,
    # unused header fields); all 18341 bytes: 17328 refused, 1013 intact, none intact but changed
    assert refused > 250 and refused + intact >= 300
    path.write_bytes(clean)
    _flip(path)                                          # inside the weights
    with pytest.raises(CheckpointError, match="is corrupt.*checksum.*delete it and retrain"):
        checkpoints.read_checkpoint(path)


def test_empty_file_gives_checkpoint_error_not_index_error(tmp_path):
    (tmp_path / "e.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty \(0 bytes\)"):
        checkpoints.read_checkpoint(tmp_path / "e.pt")
    (tmp_path / "junk.pt").write_bytes(b"\n")             # an exception with an empty message
    with pytest.raises(CheckpointError, match="truncated or not"):
        checkpoints.read_checkpoint(tmp_path / "junk.pt")


def test_file_without_checksum_loads_with_a_warning(tmp_path):
    torch.save({"config": {}, "w": torch.ones(3)}, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="carries no checksum"):
        assert checkpoints.read_checkpoint(tmp_path / "old.pt")["w"].sum() == 3


def test_shipped_files_load_unchanged_and_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        den = pt.pretrained("digits")
    assert den.card["sha256"] == checkpoints.file_sha256(
        checkpoints.checkpoint_dir() / "digits_prior" / "prior.pt")


@pytest.mark.parametrize("text,match", [("{not json", "cannot be read.*JSONDecodeError"),
                                        ('{"steps": 3}', "no valid 'sha256'"),
                                        ("[1, 2]", "not a JSON object"), ("", "cannot be read")])
def test_bad_cards_give_checkpoint_error(tmp_path, text, match):
    path = train.train_prior(train.TrainConfig(**{**TINY, "steps": 1, "out": str(tmp_path)}),
                             progress=False)
    (tmp_path / "model_card.json").write_text(text)
    with pytest.raises(CheckpointError, match=match):
        checkpoints.load_prior(path)


def test_a_changed_card_is_refused_unless_its_card_sha256_is_removed(tmp_path):
    path = train.train_prior(train.TrainConfig(**{**TINY, "steps": 1, "out": str(tmp_path)}),
                             progress=False)
    card_path = tmp_path / "model_card.json"
    text = card_path.read_text()
    assert '"card_sha256"' in text and '"steps": 1,' in text
    card_path.write_text(text.replace('"steps": 1,', '"steps": 9,'))
    with pytest.raises(CheckpointError, match="checksum mismatch for model card.*card_sha256"):
        checkpoints.load_prior(path)
    card = json.loads(card_path.read_text())
    del card["card_sha256"]                                 # edited on purpose
    card_path.write_text(json.dumps(card))
    assert checkpoints.load_prior(path).card["steps"] == 9


def test_bad_shipped_card_gives_checkpoint_error(tmp_path, monkeypatch):
    import shutil
    shutil.copytree(checkpoints.checkpoint_dir() / "ud2m_mnist_sr4", tmp_path / "ud2m_mnist_sr4")
    (tmp_path / "ud2m_mnist_sr4" / "model_card.json").write_text('{"sha256": ')
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match="model card .* cannot be read"):
        pt.ud2m.pretrained("mnist-sr4", den=object())


# -- user-saved samplers --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ud2m", "aps"])
def test_user_saved_samplers_refuse_flipped_or_empty_files(toy, tmp_path, kind):
    tp, den = toy
    if kind == "ud2m":
        xs = tp.prior.sample(64, generator=_gen(0))
        s = pt.ud2m.train(den, tp.problem, xs, generator=_gen(0), steps=2, batch=16)
        load = lambda p: pt.ud2m.UD2MSampler.load(p, den, tp.problem)   # noqa: E731
    else:
        s = pt.aps.train(den, tp.problem, tp.y[None], generator=_gen(0), steps=2, batch=16)
        load = lambda p: pt.aps.load(p, den, tp.problem)                # noqa: E731
    path = s.save(tmp_path / "s.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                  # checksummed: no warning
        assert torch.equal(load(path).sample(tp.y, 4, generator=_gen(1)),
                           s.sample(tp.y, 4, generator=_gen(1)))
    _flip(path)
    with pytest.raises(CheckpointError, match="corrupt|truncated"):
        load(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load(path)


# -- last.pt and prev.pt ------------------------------------------------------------------------
def test_read_latest_falls_back_to_prev_and_keeps_the_damaged_file(tmp_path):
    last = tmp_path / "last.pt"
    for step in (1, 2):
        safe_io.write({"step": step, "w": torch.zeros(1000)}, last, keep_previous=True)
    assert torch.load(tmp_path / "prev.pt", weights_only=True)["step"] == 1
    _flip(last)                                            # inside w
    with pytest.warns(UserWarning, match=r"prev.pt \(step 1\).*last.pt.corrupt"):
        ckpt, used = safe_io.read_latest(last)
    assert ckpt["step"] == 1 and used.name == "prev.pt" and not last.exists()
    assert (tmp_path / "last.pt.corrupt").exists()
    safe_io.write({"step": 2}, last, keep_previous=True)   # the good prev.pt stays the previous
    assert safe_io.read_latest(last)[0]["step"] == 2
    assert torch.load(tmp_path / "prev.pt", weights_only=True)["step"] == 1
    for p in (last, tmp_path / "prev.pt"):
        p.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.*empty.*No usable checkpoint"):
        safe_io.read_latest(last)


def _steps_on_disk(folder):
    """{name: step} of last.pt and prev.pt as they are now (each must be complete)."""
    return {n: safe_io.verify(safe_io.load(folder / n), n)["step"]
            for n in ("last.pt", "prev.pt") if (folder / n).exists()}


@pytest.mark.parametrize("links", [True, False], ids=["hard-link", "copy"])
def test_rotation_keeps_the_newest_complete_last_at_every_instant(tmp_path, monkeypatch, links):
    """Look at the folder before and after every rename, link and copy of write(keep_previous):
    last.pt is always there and complete, holding the newest checkpoint written so far."""
    last, seen = tmp_path / "last.pt", []
    for step in (1, 2):
        safe_io.write({"step": step, "w": torch.zeros(100)}, last, keep_previous=True)

    def watched(real):
        def call(*a, **k):
            seen.append(_steps_on_disk(tmp_path))
            out = real(*a, **k)
            seen.append(_steps_on_disk(tmp_path))
            return out
        return call
    monkeypatch.setattr(os, "replace", watched(os.replace))
    monkeypatch.setattr(shutil, "copyfile", watched(shutil.copyfile))
    if links:
        monkeypatch.setattr(os, "link", watched(os.link))
    else:                                    # a file system without hard links: the copy path
        def no_link(*a):
            seen.append(_steps_on_disk(tmp_path))
            raise OSError("hard links not supported")
        monkeypatch.setattr(os, "link", no_link)
    safe_io.write({"step": 3, "w": torch.ones(100)}, last, keep_previous=True)
    monkeypatch.undo()
    assert all(s.get("last.pt") in (2, 3) and s.get("prev.pt") in (1, 2) for s in seen), seen
    assert len(seen) >= 5                                   # link/copy, 2 renames, before/after
    assert [s["last.pt"] for s in seen] == sorted(s["last.pt"] for s in seen)   # never back
    assert seen[0] == {"last.pt": 2, "prev.pt": 1} and seen[-1] == {"last.pt": 3, "prev.pt": 2}
    assert sorted(os.listdir(tmp_path)) == ["last.pt", "prev.pt"]


def test_killed_between_renames_or_mid_write_leaves_a_complete_checkpoint(tmp_path, monkeypatch):
    last = tmp_path / "last.pt"
    safe_io.write({"step": 1}, last, keep_previous=True)
    os.replace(last, tmp_path / "prev.pt")                 # as if killed between the two renames
    assert safe_io.read_latest(last)[0]["step"] == 1
    safe_io.write({"step": 2}, last, keep_previous=True)

    def half_then_die(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt
    monkeypatch.setattr(safe_io.torch, "save", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        safe_io.write({"step": 3}, last, keep_previous=True)
    monkeypatch.undo()
    assert safe_io.read_latest(last)[0]["step"] == 2 and sorted(os.listdir(tmp_path)) == [
        "last.pt", "prev.pt"]


# -- resumed prior training keeps its settings and describes the whole run ------------------------
def _cfg(tmp_path, name="run", **kw):
    return train.TrainConfig(**{**TINY, "steps": 12, "out": str(tmp_path / name), **kw})


@pytest.mark.parametrize("change", [dict(lr=1e-3), dict(dropout=0.1), dict(ema=0.99),
                                    dict(steps=16), dict(warmup=3)])
def test_prior_resume_refuses_other_settings(tmp_path, change):
    train.train_prior(_cfg(tmp_path, steps=4, ckpt_every=2), progress=False)
    key, new = next(iter(change.items()))
    old = getattr(_cfg(tmp_path, steps=4), key)
    with pytest.raises(CheckpointError, match=rf"{key}={old!r} \(this command: {key}={new!r}\)"):
        train.train_prior(_cfg(tmp_path, **{"steps": 4, "ckpt_every": 2, **change}),
                          progress=False)


def test_finished_run_rerun_with_fewer_steps_is_refused(tmp_path):
    train.train_prior(_cfg(tmp_path, steps=6, ckpt_every=3), progress=False)
    with pytest.raises(CheckpointError, match=r"steps=6 \(this command: steps=3\)"):
        train.train_prior(_cfg(tmp_path, steps=3, ckpt_every=3), progress=False)
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["steps"] == 6


def test_card_of_a_resumed_run_describes_the_whole_run(tmp_path, monkeypatch):
    straight = train.train_prior(_cfg(tmp_path, "straight"), progress=False)
    interrupt_prior_training(monkeypatch, _cfg(tmp_path, "cut"), step=9)
    resumed = train.train_prior(_cfg(tmp_path, "cut", ckpt_every=5), progress=False)
    a, b = (json.loads((p.parent / "model_card.json").read_text()) for p in (straight, resumed))
    assert b["resumed_at"] == [8] and a["resumed_at"] == []
    assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-5) and b["steps"] == 12


# -- kill -9 mid-run, corrupt the newest checkpoint, rerun ---------------------------------------
PAUSE_AT_THIRD = """
import runpy, sys, time
from posterior_tutor.files import safe
real, calls = safe._put_in_place, []

def paused(tmp, path, keep_previous):
    # the third last.pt: its temp file complete, last.pt and prev.pt the two before it
    calls.append(path.name)
    if calls.count("last.pt") == 3 and path.name == "last.pt":
        print("PAUSED-MID-WRITE", flush=True)
        time.sleep(600)
    return real(tmp, path, keep_previous)

safe._put_in_place = paused
target, sys.argv = sys.argv[1], sys.argv[1:]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""


def _kill_when_two_checkpoints(target, args, folder, env, timeout=240):
    """Run ``target`` (a module or a script) in a child that pauses inside the write of its third
    checkpoint (temp file complete, not yet in place: ``PAUSE_AT_THIRD``) and says so; kill -9 it
    there, check that last.pt and prev.pt are the two complete checkpoints before, corrupt
    last.pt and return prev.pt's step.  The kill point is signalled by the child, not timed."""
    log = folder.parent / f"{folder.name}.stderr"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", PAUSE_AT_THIRD, target, *args], env=env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            while True:
                ready, _, _ = select.select([proc.stdout], [], [], timeout)
                line = proc.stdout.readline() if ready else None
                assert line is not None, f"no signal from the child in {timeout} s"
                assert line, f"the child ended without pausing: {log.read_text()[-2000:]}"
                if line.strip() == "PAUSED-MID-WRITE":
                    break
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    assert list(folder.glob(".last.pt.*.tmp")), "killed mid-write: the third one's temp file"
    steps = {n: torch.load(folder / n, weights_only=True)["step"] for n in ("prev.pt", "last.pt")}
    assert steps["last.pt"] > steps["prev.pt"] > 0
    _flip(folder / "last.pt")                              # corrupt the newest checkpoint
    return steps["prev.pt"]


def _no_leftovers(folder):
    """After the rerun: the damaged last.pt kept aside, no temp file of the killed write left."""
    assert (folder / "last.pt.corrupt").exists() and not list(folder.glob(".*.tmp"))


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def one_thread():
    """In-process runs compared bitwise with single-threaded subprocesses."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow   # about 10 s: two subprocesses (3 s of imports each) and 80 steps
def test_kill_9_prior_training_then_corrupt_last_resumes_from_prev(tmp_path, one_thread):
    args = ["--data", "digits", "--size", "8", "--channels", "8,16", "--attention", "false",
            "--steps", "40", "--batch", "8", "--lr", "2e-3", "--warmup", "2", "--seed", "3",
            "--ckpt-every", "4", "--no-progress", "--threads", "1", "--out", str(tmp_path / "k")]
    cmd = [sys.executable, "-m", "posterior_tutor.priors.train", *args]
    good = _kill_when_two_checkpoints("posterior_tutor.priors.train", args, tmp_path / "k", _env())
    rerun = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"Resuming from the previous checkpoint {tmp_path / 'k' / 'prev.pt'} (step {good})" \
        in rerun.stderr
    _no_leftovers(tmp_path / "k")
    card = json.loads((tmp_path / "k" / "model_card.json").read_text())
    assert card["resumed_at"] == [good] and card["steps"] == 40
    straight = train.train_prior(train.TrainConfig(**{**TINY, "steps": 40, "ckpt_every": 40,
                                                      "out": str(tmp_path / "s")}), progress=False)
    a = torch.load(straight.parent / "last.pt", weights_only=True)["net"]
    b = torch.load(tmp_path / "k" / "last.pt", weights_only=True)["net"]
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert card["final_loss"] == pytest.approx(json.loads(
        (tmp_path / "s" / "model_card.json").read_text())["final_loss"], rel=1e-5)


UD2M_RUN = """
import sys, torch, posterior_tutor as pt

def run(folder, out):
    tp = pt.toy.bimodal_problem_2d()
    den = tp.prior.denoiser(pt.VPSchedule())
    xs = tp.prior.sample(500, generator=torch.Generator().manual_seed(0))
    ud = pt.ud2m.train(den, tp.problem, xs, generator=torch.Generator().manual_seed(1), steps=40,
                       batch=64, checkpoint=folder, checkpoint_every=4)
    torch.save({"adapter": ud.denoiser.adapter_state(), "lam": ud.log_lam.detach(),
                "losses": torch.tensor(ud.losses)}, out)

if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
"""


@pytest.mark.slow   # about 10 s: two subprocesses and 80 toy UD2M steps
def test_kill_9_ud2m_training_then_corrupt_last_resumes_from_prev(tmp_path, one_thread):
    script = tmp_path / "run.py"
    script.write_text(UD2M_RUN)
    folder = tmp_path / "ckpt"
    args = [str(folder), str(tmp_path / "killed.pt")]
    cmd = [sys.executable, str(script), *args]
    good = _kill_when_two_checkpoints(str(script), args, folder, _env())
    rerun = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"Resuming from the previous checkpoint {folder / 'prev.pt'} (step {good})" \
        in rerun.stderr
    _no_leftovers(folder)
    here = {"__name__": "in_process"}
    exec(compile(UD2M_RUN, "ud2m_run", "exec"), here)
    here["run"](tmp_path / "c2", tmp_path / "w.pt")           # the same run, uninterrupted
    a = torch.load(tmp_path / "w.pt", weights_only=True)
    b = torch.load(tmp_path / "killed.pt", weights_only=True)
    assert all(torch.equal(a["adapter"][k], b["adapter"][k]) for k in a["adapter"])
    assert torch.equal(a["lam"], b["lam"]) and torch.equal(a["losses"], b["losses"])
    assert len(b["losses"]) == 40                          # the whole run's curve


def test_ud2m_resume_refuses_other_settings_and_needs_a_generator(toy, tmp_path):
    tp, den = toy
    xs = tp.prior.sample(64, generator=_gen(0))
    kw = dict(steps=3, batch=8, checkpoint=tmp_path / "r", checkpoint_every=2)
    pt.ud2m.train(den, tp.problem, xs, generator=_gen(1), **kw)
    with pytest.raises(CheckpointError, match=r"lr=0.001 \(this call: lr=0.002\)"):
        pt.ud2m.train(den, tp.problem, xs, generator=_gen(1), lr=2e-3, **kw)
    with pytest.raises(CheckpointError, match="generator_at_start"):
        pt.ud2m.train(den, tp.problem, xs, generator=_gen(2), **kw)
    with pytest.raises(CheckpointError, match=r"steps=3 \(this call: steps=2\)"):
        pt.ud2m.train(den, tp.problem, xs, generator=_gen(1), **{**kw, "steps": 2})
    with pytest.raises(ValueError, match="needs generator="):
        pt.ud2m.train(den, tp.problem, xs, **kw)
    with pytest.raises(ValueError, match="checkpoint_every must be an integer >= 1, got 0"):
        pt.ud2m.train(den, tp.problem, xs, generator=_gen(1), **{**kw, "checkpoint_every": 0})


def test_aps_script_resume_records_each_session_and_keeps_the_network():
    """train_aps_mnist.py --resume is a warm restart: the new settings are used from the step it
    resumed at, and every session is recorded (the shipped sr4 flow: lr 5e-4, then 3e-4)."""
    from argparse import Namespace
    aps = load_script("train_aps_mnist")
    config = dict(batch=16, lr=5e-4, anneal_steps=200, hidden=64, feat=16)
    a = Namespace(steps=6000, batch=16, lr=3e-4, anneal_steps=200, seed=0, hidden=64, feat=16,
                  resume="flow.pt")
    aps.continue_sessions(a, config, 1848)
    assert config["lr"] == 3e-4 and [s["from_step"] for s in config["sessions"]] == [0, 1848]
    assert config["sessions"][0]["lr"] == 5e-4 and config["sessions"][1]["lr"] == 3e-4
    assert "from step 1848: steps 6000, batch 16, lr 0.0003" in aps.sessions_line(
        config["sessions"])
    with pytest.raises(SystemExit, match=r"--hidden 64 \(this command: 32\)"):
        aps.continue_sessions(Namespace(**{**vars(a), "hidden": 32}), config, 1900)


def test_ud2m_lora_run_interrupted_and_resumed_equals_the_uninterrupted_one(tmp_path, monkeypatch):
    """The image path (LoRA adapters, discriminator, two optimisers, two cosine schedules)."""
    from posterior_tutor.trained.ud2m import losses as U   # _fit calls losses.sampler_loss
    torch.manual_seed(0)
    net = pt.nets.UNet(1, (8, 16))
    torch.nn.init.normal_(net.out[-1].weight, std=0.02)
    den = pt.EpsNetDenoiser(net, pt.VPSchedule(), shape=(1, 16, 16))
    xs = pt.data.load("digits", limit=16)
    mask = torch.rand(1, 16, 16, generator=_gen(0)) > 0.5
    prob = pt.InverseProblem(pt.operators.Inpainting(mask), 0.05)
    kw = dict(steps=6, batch=2, K=2, N=2)
    straight = pt.ud2m.train(den, prob, xs, generator=_gen(0), **kw)
    real, calls = U.sampler_loss, [0]

    def crash_at_6th(*a, **k):
        calls[0] += 1
        if calls[0] == 6:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(U, "sampler_loss", crash_at_6th)
    with pytest.raises(KeyboardInterrupt):
        pt.ud2m.train(den, prob, xs, generator=_gen(0), checkpoint=tmp_path, checkpoint_every=2,
                      **kw)
    monkeypatch.setattr(U, "sampler_loss", real)
    resumed = pt.ud2m.train(den, prob, xs, generator=_gen(0), checkpoint=tmp_path,
                            checkpoint_every=2, **kw)
    a, b = straight.denoiser.adapter_state(), resumed.denoiser.adapter_state()
    assert len(a) == 6 and all(torch.equal(a[k], b[k]) for k in a)
    assert straight.losses == resumed.losses and straight.lam == resumed.lam
    other = pt.operators.Inpainting(torch.rand(1, 16, 16, generator=_gen(1)) > 0.5)
    with pytest.raises(CheckpointError, match=r"problem=.*A\(probe\)"):   # another mask
        pt.ud2m.train(den, pt.InverseProblem(other, 0.05), xs, generator=_gen(0),
                      checkpoint=tmp_path, checkpoint_every=2, **kw)
