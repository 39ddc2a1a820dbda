"""Scoring a sampler the student built, against the exact posterior of a toy problem.

    value, detail = sampler_score(my_sampler, pt.toy.bimodal_problem_2d(), n=1000, nfe_budget=100)

``my_sampler(den, problem, y, n, generator) -> (n, d) samples`` is called once, with the toy
prior's exact denoiser (so the score measures the sampler, not a network) and a seeded generator.
The score is the sliced Wasserstein distance to ``n`` exact posterior samples as a multiple of
the noise floor (the distance between two exact sets of the same size; 1 is as good as exact,
see chapter 00).  ``nfe_budget`` refuses a sampler that calls the denoiser more often (batched
calls count once, as NFE per sample does everywhere in the course); ``backward=False`` refuses
one that differentiates through the denoiser.  Bad output (wrong shape,
NaN) raises ``ValueError`` with what was wrong; the exercise turns it into a verdict.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from ..metrics.distances import noise_floor, sliced_wasserstein
from ..toy import bimodal_problem_2d, gmm_problem

PROBLEMS = {"2d-bimodal": bimodal_problem_2d, "gmm-d16-rank4": gmm_problem}


@lru_cache(maxsize=8)
def floor(problem_name: str, n: int) -> float:
    """The noise floor of a toy problem at n samples: the mean SW between two exact sets (5 pairs)."""
    tp = PROBLEMS[problem_name]()
    gen = torch.Generator().manual_seed(123)
    return noise_floor(lambda k, g: tp.posterior.sample(k, generator=g), n, repeats=5,
                       generator=gen).mean


def sampler_score(sampler, problem_name: str = "2d-bimodal", n: int = 1000,
                  nfe_budget: int | None = None, seed: int = 0,
                  backward: bool = True) -> tuple[float, str]:
    """(SW to the exact posterior / noise floor, a sentence with the NFE) of ``sampler``."""
    if problem_name not in PROBLEMS:
        raise ValueError(f"unknown toy problem {problem_name!r}; choose one of {sorted(PROBLEMS)}.")
    tp = PROBLEMS[problem_name]()
    den = tp.prior.denoiser()
    den.reset_counters()
    xs = sampler(den, tp.problem, tp.y, n, torch.Generator().manual_seed(seed))
    if not isinstance(xs, torch.Tensor):
        raise ValueError(f"the sampler returned a {type(xs).__name__}; return a tensor of shape "
                         f"({n}, {tp.x_true.numel()}).")
    if tuple(xs.shape) != (n, tp.x_true.numel()):
        raise ValueError(f"the sampler returned shape {tuple(xs.shape)}; expected "
                         f"({n}, {tp.x_true.numel()}): n samples, one per row.")
    if not torch.isfinite(xs).all():
        raise ValueError("the samples contain NaN or Inf; print x after each step to see where.")
    nfe = den.nfe
    if nfe_budget is not None and nfe > nfe_budget:
        raise ValueError(f"the sampler called the denoiser {nfe} times; the budget is "
                         f"{nfe_budget} (call it once per step on the whole batch).")
    if not backward and den.nfe_grad:
        raise ValueError(f"the sampler took {den.nfe_grad} gradients through the denoiser; this "
                         "exercise allows none (no backward pass: use a proximal data step).")
    exact = tp.posterior.sample(n, generator=torch.Generator().manual_seed(seed + 1))
    sw = sliced_wasserstein(xs.detach().double(), exact.double(),
                            generator=torch.Generator().manual_seed(seed + 2)).item()
    ratio = sw / floor(problem_name, n)
    return ratio, (f"{problem_name}: SW {sw:.3f} = {ratio:.1f} x the noise floor at n = {n}, "
                   f"with {nfe} network calls.")
