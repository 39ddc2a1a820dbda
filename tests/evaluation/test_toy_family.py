"""The toy family: random Gaussian-mixture problems drawn in the stated ranges, reproducible from a
seed, with the exact posterior of toy.py; and the table script on two small problems."""
import pytest
import torch

import posterior_tutor as pt
from conftest import load_script
from posterior_tutor.evaluation.toy_family import (RANGES, family_references, random_problem,
                                                   sw_mean, toy_family)


def test_same_seed_same_problem_other_seed_other_problem():
    a, b, c = random_problem(3), random_problem(3), random_problem(4)
    assert a.name == b.name
    assert torch.equal(a.y, b.y) and torch.equal(a.prior.means, b.prior.means)
    assert torch.equal(a.problem.operator.matrix(), b.problem.operator.matrix())
    assert a.name != c.name or not torch.equal(a.y, c.y)


def test_the_family_spans_the_ranges():
    fam = toy_family(12)
    assert len(fam) == 12 and len({tp.name for tp in fam}) == 12
    for tp in fam:
        s = tp.sizes
        assert RANGES["d"][0] <= s["d"] <= RANGES["d"][1] and tp.prior.d == s["d"]
        assert RANGES["k"][0] <= s["k"] <= RANGES["k"][1] and tp.prior.K == s["k"]
        assert 1 <= s["rank"] <= max(1, s["d"] // 2)
        assert tp.problem.operator.matrix().shape == (s["rank"], s["d"])
        assert RANGES["sigma"][0] <= s["sigma"] <= RANGES["sigma"][1] == 0.5
        assert tp.problem.sigma == s["sigma"]
    dims = [tp.sizes["d"] for tp in fam]
    assert min(dims) <= 4 and max(dims) >= 12, "small and large dimensions both drawn"
    assert len({tp.sizes["k"] for tp in fam}) >= 4
    assert toy_family(3, seed=1)[0].name != fam[0].name


def test_the_posterior_is_toy_posterior_and_sizes_can_be_fixed():
    tp = random_problem(7, d=3, k=4, rank=1, sigma=0.3)
    assert tp.sizes == dict(seed=7, d=3, k=4, rank=1, sigma=0.3)
    post = tp.prior.posterior(tp.problem, tp.y)
    assert torch.allclose(post.means, tp.posterior.means) and torch.allclose(
        post.weights, tp.posterior.weights)
    g = pt.toy.random_mixture(d=3, k=4, spread=1.0, scale=0.5, seed=7)
    assert torch.equal(g.means, tp.prior.means)
    # the posterior mean is pulled to the data: |A m - y| below the prior mean's residual
    A = tp.problem.operator.matrix().double()
    assert (A @ tp.posterior.mean() - tp.y.double()).norm() < (A @ tp.prior.mean()
                                                               - tp.y.double()).norm()


@pytest.mark.parametrize("kw, what", [(dict(d=1), "d"), (dict(d=17), "d"), (dict(k=9), "k"),
                                      (dict(d=4, rank=3), "rank"), (dict(sigma=0.05), "sigma"),
                                      (dict(d=2.5), "d"), (dict(seed=-1), "seed")])
def test_bad_sizes_are_refused_with_what_was_wrong(kw, what):
    seed = kw.pop("seed", 0)
    with pytest.raises(ValueError, match=what):
        random_problem(seed, **kw)


def test_bad_family_arguments_are_refused():
    with pytest.raises(ValueError, match="count"):
        toy_family(0)
    with pytest.raises(ValueError, match="seed"):
        toy_family(2, seed=-3)


def test_references_order_floor_below_prior():
    tp = random_problem(2)
    ref = family_references(tp, 400)
    lo, hi = ref["floor_spread"]
    assert lo <= ref["floor"] <= hi < ref["prior"]
    assert sw_mean(ref["exact"], ref["exact"]) == pytest.approx(0.0, abs=1e-6)


def test_the_table_script_writes_every_method_and_appends(tmp_path, monkeypatch):
    script = load_script("toy_family_table")
    monkeypatch.setattr(script, "METHODS", ("latino", "ud2m untrained"))
    script.main(["--count", "2", "--n", "200", "--out", str(tmp_path), "--methods", "latino"])
    assert "| - |" in (tmp_path / "toy_family.md").read_text()        # not run yet: a dash
    script.main(["--count", "1", "--n", "200", "--out", str(tmp_path), "--methods",
                 "ud2m untrained", "--append"])
    text = (tmp_path / "toy_family.md").read_text()
    assert "latino x floor" in text and "ud2m untrained x floor" in text
    rows = (tmp_path / "toy_family.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 + 1                  # header, LATINO on two problems, UD2M on one
    with pytest.raises(SystemExit, match="unknown methods"):
        script.main(["--methods", "latino,magic", "--out", str(tmp_path)])
