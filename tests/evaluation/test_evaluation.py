"""The one held-out image evaluation: its scores are the metrics' and its loop measures, samples
and times each image once."""
import math

import pytest
import torch

import posterior_tutor as pt
from conftest import seeded


def _images(k=3):
    return torch.rand(k, 1, 8, 8, generator=seeded(0)) * 2 - 1


def test_image_scores_are_the_metrics():
    x = _images(1)[0]
    s = (x + 0.1 * torch.randn(5, 1, 8, 8, generator=seeded(1))).clamp(-1, 1)
    got = pt.evaluation.image_scores(s, x)
    assert got["psnr_single"] == pytest.approx(pt.metrics.psnr(s, x[None].expand_as(s)).mean().item())
    assert got["psnr_mean"] == pytest.approx(pt.metrics.psnr(s.mean(0, keepdim=True), x[None]).item())
    assert got["ssim_mean"] == pytest.approx(pt.metrics.ssim(s.mean(0, keepdim=True), x[None]).item())
    assert got["coverage"] == pytest.approx(float(pt.metrics.coverage(s, x)))
    assert got["rank_coverage"] == pytest.approx(float(pt.metrics.rank_coverage(s, x)))
    assert math.isnan(got["lpips_mean"])
    assert got["psnr_mean"] > got["psnr_single"]          # the mean averages the noise out
    assert math.isnan(pt.evaluation.image_scores(s[:1], x)["coverage"])   # one sample: no interval


def test_evaluate_images_measures_samples_and_times_every_image():
    xs = _images(3)
    prob = pt.InverseProblem(pt.operators.Denoising(), 0.1)
    calls, wrapped = [], []

    def run(p, y, n, g):
        calls.append((tuple(y.shape), n))
        return (y[None] + 0.05 * torch.randn(n, *y.shape, generator=g)).clamp(-1, 1)

    def wrap(call):
        wrapped.append(1)
        return call()
    r = pt.evaluation.evaluate_images(run, xs, lambda i: prob, lambda i: (seeded(i), seeded(9)), 4,
                                      extra=lambda p, y, s, x: {"spread": float(s.std(0).mean())},
                                      wrap=wrap)
    assert calls == [((1, 8, 8), 4)] * 3 and len(wrapped) == 3
    assert r["images"] == 3 and r["samples"] == 4 and r["seconds_per_sample"] > 0
    assert 0.04 < r["spread"] < 0.06
    assert 15 < r["psnr_single"] < 30, r
    again = pt.evaluation.evaluate_images(run, xs, lambda i: prob, lambda i: (seeded(i), seeded(9)),
                                          4)
    assert again["psnr_mean"] == r["psnr_mean"]         # the generators fix every draw
    with pytest.raises(ValueError, match="no images"):
        pt.evaluation.evaluate_images(run, xs[:0], lambda i: prob, lambda i: (None, None), 4)
