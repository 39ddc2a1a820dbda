"""The benchmark runs end to end in fast mode and reports consistent numbers."""
import torch

import posterior_tutor as pt
from posterior_tutor.evaluation import bench, image_suite, report, runners, toy_suite


def test_toy_suite_fast(tmp_path):
    rows = toy_suite.run_toy_suite(fast=True, n=200, method_names=["diffpir", "dps"], progress=False)
    by = {(r.problem, r.method): r for r in rows}
    for problem in ("2d-bimodal", "gmm-d16-rank4"):
        floor = by[(problem, "exact (noise floor)")]
        prior = by[(problem, "prior samples")]
        assert floor.sw < prior.sw
        dif = by[(problem, "diffpir")]
        assert dif.nfe == 100 and dif.backward == 0
        assert by[(problem, "dps")].backward == by[(problem, "dps")].nfe == 200
        assert dif.overhead >= 1.0
    assert by[("2d-bimodal", "dps")].sw_over_prior < 0.5   # measured 0.13 (n=200)
    report.write_toy(rows, tmp_path)
    text = (tmp_path / "toy.md").read_text()
    assert "| 2d-bimodal | diffpir |" in text and "Machine:" in text
    assert (tmp_path / "toy.csv").read_text().count("\n") == len(rows) + 1


def test_cli_rejects_unknown_method(capsys):
    import pytest
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--methods", "nope"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--methods" in err and "'nope' is not one of" in err


def test_peak_memory_sees_an_allocation():
    from posterior_tutor.evaluation.memory import PeakMemory
    with PeakMemory("cpu") as mem:
        block = torch.ones(64 * 2 ** 20 // 4)     # 64 MB, touched
        block += 1
        del block
    assert 40 < mem.mb < 200, mem.mb


def test_image_suite_fast_slice(tmp_path):
    rows = image_suite.run_image_suite(fast=True, task_names=["sr4"], method_names=["latino"],
                                        n_images=1, n_samples=2, peer=False, progress=False)
    (row,) = rows
    assert (row.task, row.method, row.nfe, row.backward) == ("sr4", "latino", 8, 0)
    assert 8 < row.psnr_mean < 40 and 0 <= row.coverage <= 1 and row.s_per_sample > 0
    report.write_images(rows, tmp_path, "test machine")
    assert "| sr4 | latino |" in (tmp_path / "images.md").read_text()
    assert (tmp_path / "images_tradeoffs.png").stat().st_size > 1000


def test_cli_rejects_unknown_task(capsys):
    import pytest
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--tasks", "nope"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--tasks" in err and "'nope' is not one of" in err


def test_fresh_process_peak_memory_orders_dps_above_spin():
    """One sampling call per method in a new process: DPS keeps the network's graph for its
    backward pass, Spin never does (measured at n=8: DPS 48-64 MB, Spin 13-21 MB idle, 33 MB
    with other tests beside it: a no-grad forward's activations at batch 8 are ~20 MB)."""
    from posterior_tutor.evaluation.memory import peak_memory_fresh
    dps = peak_memory_fresh("sr4", "dps", 8)
    spin = peak_memory_fresh("sr4", "spin", 8)
    assert spin > 0.5 and dps > spin + 20, (dps, spin)


def test_fresh_process_peak_memory_explains_a_bad_label():
    import pytest
    from posterior_tutor.evaluation.memory import peak_memory_fresh
    with pytest.raises(RuntimeError, match="no method 'nope'"):
        peak_memory_fresh("sr4", "nope", 2)


def test_image_suite_rejects_unknown_memory_mode():
    import pytest
    with pytest.raises(ValueError, match="memory must be"):
        image_suite.run_image_suite(fast=True, task_names=["sr4"], method_names=["latino"],
                                     n_images=1, n_samples=1, peer=False, progress=False,
                                     memory="nope")


def test_header_names_the_ground_truth_and_why_lpips_is_empty(tmp_path, monkeypatch, capsys):
    """Without MNIST the suite compares with prior samples, and says so in its header and rows."""
    from posterior_tutor import data, metrics

    def offline(*args, **kwargs):
        raise data.DataUnavailable("MNIST is not available (test)")
    monkeypatch.setattr(data, "load", offline)
    monkeypatch.setattr(metrics, "lpips_available", lambda net="alex": False)
    rows = image_suite.run_image_suite(fast=True, task_names=["sr4"], method_names=["latino"],
                                        n_images=1, n_samples=2, peer=False, progress=True)
    assert rows[0].truth == runners.PRIOR_TRUTH
    assert "ground truth = samples of the prior" in capsys.readouterr().out
    report.write_images(rows, tmp_path, "test machine")
    header = (tmp_path / "images.md").read_text().split("\n")[2]
    assert "Ground truth: samples of the prior" in header and "held-out" not in header.split(
        "not held-out")[0], header
    assert "LPIPS mean is - because its AlexNet weights are unavailable" in header, header
    assert "truth" in (tmp_path / "images.csv").read_text().splitlines()[0]
    held = [image_suite.ImageRow(**{**rows[0].__dict__, "truth": runners.HELD_OUT,
                                     "lpips_mean": 0.1})]
    text = report.header(held)
    assert "Ground truth: held-out MNIST digits" in text and "LPIPS mean is -" not in text


def test_a_sampler_that_refuses_a_task_gets_no_row(capsys):
    """MCGdiff needs a linear operator: on the nonlinear task it is left out, with its reason;
    on sr4 it runs; a sampler with no operator check is never refused."""
    from posterior_tutor.evaluation.runners import method_runners, refused
    den = pt.toy.random_mixture(d=1024, k=2, seed=0).denoiser(pt.VPSchedule())
    den.shape = (1, 32, 32)
    assert refused("mcgdiff", den, "nonlinear", fast=True)
    assert "linear operators only" in capsys.readouterr().out
    assert not refused("mcgdiff", den, "sr4", fast=True)
    assert not refused("dps", den, "nonlinear", fast=True)
    assert "mcgdiff" not in method_runners(den, "nonlinear", ["mcgdiff", "dps"], True, False)
    assert "mcgdiff" in method_runners(den, "sr4", ["mcgdiff"], True, False)
