"""UD2M: unfolded diffusion posterior sampling, fine-tuned by distillation (Mbakam, Spence, Pereyra
2025, "Learning few-step posterior samplers by unfolding and distillation of diffusion models",
arXiv 2507.02686; public code charles-kmc/UD2M @a10f9f8).  ``pt.ud2m`` is this package.

    ud = pt.ud2m.train(den, problem, xs_train, generator=g)    # xs_train: clean signals (n, ...)
    xs = ud.sample(y, n=500, generator=g)      # K N calls a sample (images 3 x 3, vectors 4 x 2)
    ud = pt.ud2m.pretrained("mnist-random-inpainting")       # a shipped sampler

One file per role, each opening with its equations and departures:
    block.py          the unfolded block L(x_t, y, t) and its data prox
    adapters.py       LoRA / the residual: what is trained in the prior; merge for sampling
    discriminator.py  the conditional discriminator and its loss
    sampler.py        UD2MSampler: the outer DDIM loop, with_calls, with_preset, files, shipped
    losses.py         the training batch and the sampler's loss
    train.py          train, continue_from and the alternating loop
    run_state.py      what a resumable training run saves (parts) and must keep (settings)
    presets.py        the public code's noise bookkeeping next to ours
    checks.py         input checks
Measurements, sweeps and histories: docs/notes/ud2m.md.
"""
from .adapters import AdaptedDenoiser, LoRA, ResidualMLP, adaptable_layers, add_lora, default_lora_layers, merge_lora, merged_layer
from .block import BlockStep, block_levels, combined_quadratic, data_prox, initial_estimate, unfolded_block
from ..base import y_as_image
from .discriminator import Discriminator, discriminator_features, discriminator_loss
from .losses import draw_time, measure_batch, problem_for_batch, sampler_loss
from .sampler import FORMAT, SHIPPED, UD2MSampler, pretrained
from .train import TRAIN_OPTIONS, continue_from, train

__all__ = ["train", "pretrained", "UD2MSampler", "AdaptedDenoiser", "LoRA", "add_lora", "merge_lora",
           "adaptable_layers", "default_lora_layers",
           "unfolded_block", "combined_quadratic", "data_prox", "Discriminator"]
