"""A family of random toy problems with exact posteriors: the yardstick for trained samplers.

    problems = toy_family(12, seed=0)        # 12 ToyProblems, reproducible from the seed
    tp = random_problem(5, d=3, k=4)         # one, with some of its sizes fixed

Each problem is drawn like ``toy.gmm_problem``, with its sizes drawn too (uniform integers unless
given):

    d ~ U{2..16},  k ~ U{2..8},  rank ~ U{1..max(1, d // 2)},  sigma ~ U[0.1, 0.5],
    prior = toy.random_mixture(d, k, spread 1, scale 0.5),  A = 2 G / sqrt(d), G_ij ~ N(0, 1),
    x_true ~ prior,  y = A x_true + sigma n,

so the exact Tweedie denoiser is ``tp.prior.denoiser(schedule)`` and the exact posterior is
``tp.posterior`` (``toy.GaussianMixture.posterior``).  A single problem can flatter or fail a
method by chance; twelve of them, spanning dimension, modes, rank and noise, are a yardstick.
The table over the family (SW to the exact posterior, as a multiple of the noise floor and of
the prior, for LATINO, UD2M, APS and DPS) is ``scripts/toy_family_table.py``
(docs/benchmark/toy_family.md).
"""
from __future__ import annotations

import math

import torch

from .. import toy
from ..checks.values import check_positive_int
from ..metrics import sliced_wasserstein

__all__ = ["RANGES", "random_problem", "toy_family", "sw_mean", "family_references"]

#: the ranges the sizes are drawn from (inclusive); rank's upper end is max(1, d // 2)
RANGES = {"d": (2, 16), "k": (2, 8), "sigma": (0.1, 0.5)}


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}; "
                         f"leave it None to draw it.")


def _check_sizes(seed, d, k, rank, sigma):
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")
    if d is not None:
        _check_int("d (dimension)", d, *RANGES["d"])
    if k is not None:
        _check_int("k (mixture components)", k, *RANGES["k"])
    if rank is not None and d is not None:
        _check_int("rank (rows of A)", rank, 1, max(1, d // 2))
    if sigma is not None:
        low, high = RANGES["sigma"]
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or \
                not low <= sigma <= high:
            raise ValueError(f"sigma must be a number in [{low}, {high}], got {sigma!r}.")


def _draw_int(g, low, high):
    return int(torch.randint(low, high + 1, (1,), generator=g))


def random_problem(seed: int = 0, d: int | None = None, k: int | None = None,
                   rank: int | None = None, sigma: float | None = None) -> toy.ToyProblem:
    """One random Gaussian-mixture problem, reproducible from ``seed``; the sizes not given are
    drawn (d in 2..16, k in 2..8, rank in 1..max(1, d // 2), sigma in [0.1, 0.5]).  The sizes are
    drawn first, so fixing one leaves the others as the seed draws them."""
    _check_sizes(seed, d, k, rank, sigma)
    g = torch.Generator().manual_seed(10_000 + seed)
    draws = dict(d=_draw_int(g, *RANGES["d"]), k=_draw_int(g, *RANGES["k"]),
                 u_rank=float(torch.rand(1, generator=g)), sigma=float(
                     RANGES["sigma"][0] + (RANGES["sigma"][1] - RANGES["sigma"][0])
                     * torch.rand(1, generator=g)))
    d = draws["d"] if d is None else d
    k = draws["k"] if k is None else k
    top = max(1, d // 2)
    if rank is None:
        rank = 1 + min(top - 1, int(draws["u_rank"] * top))
    _check_int("rank (rows of A)", rank, 1, top)
    sigma = round(draws["sigma"], 3) if sigma is None else float(sigma)
    return _build(seed, d, k, rank, sigma)


def _build(seed, d, k, rank, sigma):
    from ..operators import InverseProblem, Matrix
    prior = toy.random_mixture(d=d, k=k, spread=1.0, scale=0.5, seed=seed)
    g = torch.Generator().manual_seed(20_000 + seed)
    A = 2 * torch.randn(rank, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    problem = InverseProblem(Matrix(A), sigma)
    x_true = prior.sample(1, generator=g)[0]
    y = problem.measure(x_true, generator=g)
    tp = toy.ToyProblem(f"mix{seed}-d{d}-k{k}-r{rank}-s{sigma:g}", prior, problem, x_true, y)
    tp.sizes = dict(seed=seed, d=d, k=k, rank=rank, sigma=sigma)
    return tp


def toy_family(count: int = 12, seed: int = 0) -> list[toy.ToyProblem]:
    """``count`` random problems (``random_problem(seed * 1000 + i)``, i = 0..count-1)."""
    check_positive_int(count, "count (problems in the family)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")
    return [random_problem(seed * 1000 + i) for i in range(count)]


def sw_mean(a: torch.Tensor, b: torch.Tensor, seeds=(0, 1, 2)) -> float:
    """Sliced Wasserstein SW(a, b) averaged over projection seeds (256 directions each), so that
    two methods compared on the same samples are not told apart by the directions drawn."""
    return sum(sliced_wasserstein(a, b, generator=torch.Generator().manual_seed(s)).item()
               for s in seeds) / len(seeds)


def family_references(tp: toy.ToyProblem, n: int, seed: int = 0) -> dict:
    """The yardsticks of one problem at n samples: ``exact`` (n posterior draws, the reference),
    ``floor`` = SW(another exact draw, exact), ``floor_spread`` = (min, max) of it over three
    independent draws, ``prior`` = SW(n prior draws, exact)."""
    check_positive_int(n, "n (samples)")
    g = torch.Generator().manual_seed(seed)
    exact = tp.posterior.sample(n, generator=g)
    floors = [sw_mean(tp.posterior.sample(n, generator=g), exact) for _ in range(3)]
    prior = sw_mean(tp.prior.sample(n, generator=g), exact)
    return dict(exact=exact, floor=floors[0], floor_spread=(min(floors), max(floors)),
                prior=prior)
