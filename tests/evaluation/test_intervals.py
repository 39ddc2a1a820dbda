"""The image benchmark's intervals and floors: bootstrap intervals over images, trivial rows,
the Markdown that shows both, and the merged / resumed tables."""
import math

import pytest
import torch
import torch.nn.functional as F

from posterior_tutor import tasks
from posterior_tutor.evaluation import bench, held_out, image_suite, report, runners


def _values(k, seed=0):
    return (20 + 3 * torch.randn(k, generator=torch.Generator().manual_seed(seed))).tolist()


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_images():
    widths = []
    for k in (8, 32, 128):
        v = _values(k)
        lo, hi = held_out.bootstrap_interval(v)
        assert lo < sum(v) / k < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2], widths
    # the width of a 95% interval of a mean: about 2 x 1.96 sd / sqrt(k) (sd 3 here)
    assert widths[2] == pytest.approx(2 * 1.96 * 3 / math.sqrt(128), rel=0.25)


def test_bootstrap_interval_is_seeded_and_refuses_bad_input():
    v = _values(10)
    assert held_out.bootstrap_interval(v) == held_out.bootstrap_interval(v)
    assert held_out.bootstrap_interval(v, seed=1) != held_out.bootstrap_interval(v)
    assert all(math.isnan(x) for x in held_out.bootstrap_interval([21.0]))   # one image: none
    assert all(math.isnan(x) for x in held_out.bootstrap_interval([]))
    assert all(math.isnan(x) for x in held_out.bootstrap_interval([1.0, math.nan]))
    with pytest.raises(ValueError, match="inf"):
        held_out.bootstrap_interval([1.0, math.inf])
    with pytest.raises(ValueError, match="level"):
        held_out.bootstrap_interval(v, level=1.5)
    with pytest.raises(ValueError, match="resamples"):
        held_out.bootstrap_interval(v, resamples=0)


def test_paired_interval_removes_what_the_images_share():
    hard = _values(16)                               # how hard each digit is, shared by both
    a = [h + 0.5 for h in hard]
    b = [h + 0.1 * x for h, x in zip(hard, _values(16, seed=1))]
    d, lo, hi = held_out.paired_interval(a, b)
    assert lo < d < hi and hi - lo < 0.5 * (held_out.bootstrap_interval(a)[1]
                                            - held_out.bootstrap_interval(a)[0])
    with pytest.raises(ValueError, match="same images"):
        held_out.paired_interval(a, b[:3])
    with pytest.raises(ValueError, match="no images"):
        held_out.paired_interval([], [])


def test_trivial_estimators_of_sr4_are_the_pseudo_inverse_and_the_interpolations():
    from posterior_tutor.files.shipped import pretrained
    den = pretrained("mnist")
    runs = runners.trivial_runners(den, "sr4")
    x = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    prob = tasks.image_problem("sr4", generator=torch.Generator().manual_seed(100))
    y = prob.measure(x, generator=torch.Generator().manual_seed(1))
    pinv = runs["trivial: A^+ y (nearest upsampling)"](prob, y, 4, None)
    assert pinv.shape == (1, 1, 32, 32)          # one point estimate, whatever n asks
    assert torch.allclose(pinv, F.interpolate(y[None], scale_factor=4, mode="nearest").clamp(-1, 1),
                          atol=1e-5)
    assert torch.allclose(prob.operator(pinv), y[None].clamp(-1, 1), atol=1e-5)   # A A^+ y = y
    bil = runs["trivial: bilinear upsampling"](prob, y, 4, None)
    assert torch.allclose(bil, F.interpolate(y[None], size=(32, 32), mode="bilinear",
                                             align_corners=False).clamp(-1, 1))
    assert any(k.startswith("trivial: mean") for k in runs) and "trivial: A^T y" in runs
    inp = runners.trivial_runners(den, "random_inpainting")
    assert "trivial: A^T y = A^+ y" in inp
    assert [k for k in runners.trivial_runners(den, "nonlinear") if "A^" in k] == []  # no A^T


def test_trivial_rows_are_in_the_suite_with_nfe_0_and_intervals():
    rows = image_suite.run_image_suite(fast=True, task_names=["random_inpainting"],
                                       method_names=["trivial"], n_images=3, n_samples=4,
                                       peer=False, progress=False)
    assert len(rows) == 2 and all(r.trivial and r.method.startswith("trivial: ") for r in rows)
    for r in rows:
        assert (r.nfe, r.backward, r.samples, r.images) == (0, 0, 1, 3)
        assert math.isnan(r.coverage) and math.isnan(r.rank_coverage)   # a point has no spread
        assert r.psnr_single == pytest.approx(r.psnr_mean)
        assert r.psnr_mean_lo <= r.psnr_mean <= r.psnr_mean_hi and len(r.per_image["psnr_mean"]) == 3


def _row(method, psnr, samples=4, task="sr4"):
    r = image_suite.ImageRow(task, method, len(psnr), samples, *(sum(psnr) / len(psnr),) * 2,
                             0.5, 0.5, math.nan, 0.5, 0 if method.startswith("trivial") else 10,
                             0, 0.01, 1.0, rank_coverage=0.9)
    r.per_image = {k: list(psnr) if k.startswith("psnr") else [0.5] * len(psnr)
                   for k in image_suite.INTERVALS}
    return image_suite.with_intervals(r)


def test_markdown_shows_intervals_and_the_difference_to_the_floor(tmp_path):
    floor = _row("trivial: bilinear upsampling", [14.0, 15.0, 16.0, 15.5], samples=1)
    low = _row("trivial: A^T y", [6.0, 7.0, 6.5, 6.8], samples=1)
    good = _row("ud2m", [20.0, 22.0, 21.0, 21.5])
    text = report.images_markdown([low, floor, good])
    lo, hi = good.psnr_mean_lo, good.psnr_mean_hi
    assert f"| {good.psnr_mean:.2f} [{lo:.2f}, {hi:.2f}] |" in text
    d, dlo, dhi = held_out.paired_interval(good.per_image["psnr_mean"], floor.per_image["psnr_mean"])
    assert f"| {d:+.2f} [{dlo:+.2f}, {dhi:+.2f}] |" in text and dlo > 0
    assert "| trivial: bilinear upsampling | 4 x 1 |" in text and "| floor |" in text
    head = report.header([low, floor, good], command=["cmd a", "cmd b"])
    assert "95% percentile-bootstrap" in head and "Commands: `cmd a`; `cmd b`." in head
    assert "\n" not in head                   # one line: chapter 08 splits the file at it


def test_one_image_says_there_is_no_interval():
    one = _row("ud2m", [21.0])
    assert math.isnan(one.psnr_mean_lo) and math.isnan(one.psnr_mean_hi)
    assert "| 21.00 (no interval) |" in report.images_markdown([one])
    assert "no interval for ud2m (one image)" in report.header([one])


def test_tables_read_back_and_merge_by_task_and_method(tmp_path):
    a = [_row("trivial: A^T y", [6.0, 7.0], samples=1), _row("ud2m", [20.0, 22.0])]
    report.write_images(a, tmp_path, "test machine", command="cmd a")
    back = bench.read_images(tmp_path)
    assert [(r.method, r.per_image["psnr_mean"]) for r in back] == [
        (r.method, r.per_image["psnr_mean"]) for r in a]
    assert back[1].psnr_mean_lo == a[1].psnr_mean_lo
    new = [_row("ud2m", [23.0, 24.0]), _row("dps", [1.0, 2.0]), _row("dps", [3.0, 4.0], task="x"),
           _row("trivial: mean", [1.0, 2.0], samples=1)]
    merged = bench.merge_rows(back, new)
    assert [(r.task, r.method) for r in merged] == [("sr4", "trivial: A^T y"),
                                                    ("sr4", "trivial: mean"), ("sr4", "ud2m"),
                                                    ("sr4", "dps"), ("x", "dps")]
    assert merged[2].psnr_mean == 23.5
    assert bench.read_images(tmp_path / "none") == []
    with pytest.raises(ValueError, match="no rows"):
        report.write_images([], tmp_path, "test machine")
    assert bench.add_command(tmp_path, "c1") == ["c1"] == bench.add_command(tmp_path, "c1")


def test_bench_resume_skips_the_stored_rows(tmp_path, capsys):
    argv = ["--suite", "images", "--tasks", "sr4", "--methods", "trivial", "--images", "2",
            "--fast", "--resume", "--out", str(tmp_path)]
    bench.main(argv)
    first = capsys.readouterr().out
    assert "5 rows run" in first and (tmp_path / "images_per_image.csv").is_file()
    bench.main(argv)
    assert "0 rows run, merged into" in capsys.readouterr().out
    assert len(bench.read_images(tmp_path)) == 5
    assert "Command: `python -m posterior_tutor.evaluation.bench" in (
        tmp_path / "images.md").read_text()


def test_paired_differences_follow_the_table_when_asked(tmp_path):
    a, b = _row("ud2m", [20.0, 22.0, 21.0]), _row("dps", [20.5, 22.1, 21.4])
    report.write_images([a, b], tmp_path, "test machine", pairs=[("ud2m", "dps"), ("ud2m", "x")])
    text = (tmp_path / "images.md").read_text()
    d, lo, hi = held_out.paired_interval(a.per_image["psnr_mean"], b.per_image["psnr_mean"])
    assert f"| sr4 | ud2m - dps | 3 | {d:+.2f} [{lo:+.2f}, {hi:+.2f}] |" in text
    assert "ud2m - x" not in text                 # a pair not in the table is left out
    assert text.split("\n", 4)[4].startswith("| task | method |")


def test_a_subset_of_a_stored_table_is_written_with_its_pairs(tmp_path):
    rows = [_row("trivial: A^T y", [6.0, 7.0], samples=1), _row("ud2m", [20.0, 22.0]),
            _row("dps", [21.0, 22.5]), _row("spin", [19.0, 20.0])]
    report.write_images(rows, tmp_path / "all", "test machine")
    bench.add_command(tmp_path / "all", "cmd a")
    got = bench.write_subset(tmp_path / "all", tmp_path / "sub", "sr4", ["dps", "ud2m"],
                             pairs=[("ud2m", "dps")])
    assert [r.method for r in got] == ["trivial: A^T y", "ud2m", "dps"]
    text = (tmp_path / "sub" / "images.md").read_text()
    assert "| sr4 | ud2m - dps | 2 |" in text and "(made by: cmd a)" in text
    with pytest.raises(ValueError, match="no sr4 row of aps"):
        bench.write_subset(tmp_path / "all", tmp_path / "sub", "sr4", ["aps"])


def test_toy_tables_read_back_and_merge_by_problem_and_method(tmp_path):
    """--merge on the toy suite: a stored row of the same problem and method name (before its
    settings) is replaced, a new method goes after its problem's last row, the rest is kept."""
    from posterior_tutor.evaluation.bench import merge_toy, read_toy
    from posterior_tutor.evaluation.report import write_toy
    from posterior_tutor.evaluation.toy_suite import Row

    def row(problem, method, sw):
        return Row(problem, method, 100, sw, sw / 0.1, sw, 10, 0, 1.0, 0.5, 2.0)

    old = [row("a", "exact (noise floor)", 0.1), row("a", "ud2m (trained 10 steps)", 0.5),
           row("b", "dps", 0.7)]
    write_toy(old, tmp_path)
    assert read_toy(tmp_path) == old
    assert read_toy(tmp_path / "nothing") == []
    new = [row("a", "ud2m (trained 20 steps)", 0.4), row("a", "mcgdiff (100 particles)", 0.2)]
    merged = merge_toy(read_toy(tmp_path), new)
    assert [r.method for r in merged] == ["exact (noise floor)", "ud2m (trained 20 steps)",
                                          "mcgdiff (100 particles)", "dps"]
    assert merged[1].sw == 0.4 and merged[3].problem == "b"
