"""The benchmark's per-method options: what each sampler is run with, in full and in fast mode.

    opts = IMAGE_OPTIONS["dps"][1 if fast else 0]      # {"steps": 100} in fast mode

A benchmark compares methods only as fairly as their settings allow, so the settings live in one
table per suite instead of inside the loops: every entry is a pair (full mode, fast mode) of keyword
options for ``pt.sample(name, ...)``; an empty dict means the method's own defaults (its paper's).
Fast mode cuts step counts so that the whole slice runs in minutes on a CPU; its numbers show that
the pipeline works, not how good a method is.  A new method adds one line here
(docs/adding_a_method.md).
"""
from __future__ import annotations

#: the toy suite (exact posteriors, ``toy_suite``): options per method, (full mode, fast mode)
TOY_OPTIONS = {
    "dps": ({}, {"steps": 200}),
    "diffpir": ({}, {}),
    "daps": ({"levels": 100, "langevin_steps": 50}, {"levels": 30, "langevin_steps": 30}),
    "pnp_ula": ({"steps": 5000}, {"steps": 1000}),
    "latino": ({}, {}),
    "spin": ({}, {}),
    # 100 particles, 10 draws per system, 300 steps: n / 10 systems, 3000 evaluations per sample;
    # the independent design of docs/notes/smc.md (fast: 100 steps)
    "mcgdiff": ({"particles": 100, "draws": 10}, {"particles": 30, "draws": 10, "steps": 100}),
}

#: UD2M on the toy problems (trained in the run; fast mode trains a quarter of the steps): the
#: best setting of the sweep on the 2D problem described in docs/notes/ud2m.md, "The toy problems"
TOY_UD2M = dict(K=2, N=4, sigma_factor=4.0, steps=6000, hidden=128, adv_weight=3.0)

#: zero-shot options on 32x32 images per method: (full mode, fast mode).  PnP-ULA is left out: its
#: thousands of steps at a small noise level are a 2D lesson (chapter 03), not an image sampler.
IMAGE_OPTIONS = {
    "dps": ({}, {"steps": 100}),
    "diffpir": ({}, {"steps": 20}),
    "daps": ({"levels": 50, "langevin_steps": 50}, {"levels": 10, "langevin_steps": 20}),
    "latino": ({}, {}),
    "spin": ({}, {}),
    # 32 particles per image, its 4 samples from one system (a 1024 x 1024 SVD; linear tasks
    # only), 100 steps, not the default 300, to keep six tasks x 16 digits to about half an hour
    # here; 64 particles measured +2.4 dB over 16 on random inpainting (2 digits), at 4x the time
    "mcgdiff": ({"particles": 32, "draws": 4, "steps": 100},
                {"particles": 8, "draws": 4, "steps": 20}),
}

#: deepinv's samplers at the settings of ours (``peer``): DPS with the paper's zeta (deepinv's
#: default weight guides far less, see docs/notes/peer.md), DiffPIR with lambda_ = 2 (= our
#: lambda 1, deepinv's scale differs by a factor 2)
PEER_OPTIONS = {"dps": {"zeta": 0.3}, "diffpir": {"lambda_": 2.0}}


def toy_options(name: str, fast: bool) -> dict:
    """The toy-suite options of ``name`` (its defaults when the table has no entry)."""
    return dict(TOY_OPTIONS.get(name, ({}, {}))[1 if fast else 0])


def image_options(name: str, fast: bool) -> dict:
    """The image-suite options of the zero-shot method ``name``."""
    if name not in IMAGE_OPTIONS:
        raise ValueError(f"no image options for {name!r}; the image suite runs "
                         f"{', '.join(IMAGE_OPTIONS)}.")
    return dict(IMAGE_OPTIONS[name][1 if fast else 0])
