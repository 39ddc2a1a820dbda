"""APS: amortized posterior sampling with a conditional normalising flow trained against a diffusion
prior (Mammadov, Chung, Ye 2024, "Amortized posterior sampling with diffusion prior distillation",
arXiv 2407.17907; no code is public).  ``pt.aps`` is this package.

    fl = pt.aps.train(den, problem, ys_train, generator=g)   # ys_train: measurements (n, *y.shape)
    xs = fl.sample(y, n=128, generator=g)                 # one flow pass per sample
    fl = pt.aps.pretrained("mnist-sr4")                   # a shipped flow (data/aps_mnist_sr4)

The model: q_phi(x | y) = a conditional flow x = G_phi(z, y), z ~ N(0, I), trained on
measurements only to minimise E_y KL(q_phi(. | y) || p(. | y)), with the diffusion prior entering
through its ELBO.  One file per role, each opening with its equations and departures:

    elbo.py     R(x): the diffusion ELBO (and its stop-gradient ablation) as a prior surrogate
    layers.py   the image flow's invertible layers (couplings, ActNorm, squeeze, affine output)
    flows.py    the conditional flows: a zuko flow for vectors, the coupling flow for images
    sampler.py  APSSampler: sample, iterate, log_prob, files, the shipped flows
    train.py    the loss and the training loop (train, fit, aps_loss)
    checks.py   training defaults, option kinds and input checks
Measurements (toy fits, digits, the shipped MNIST flows against DPS): docs/notes/aps.md.
"""
from ..base import y_as_image
from .elbo import PRIOR_TERMS, draw_times, elbo_weights, neg_elbo, prior_term
from .flows import VECTOR_FLOWS, ImageFlow, VectorFlow, build_flow, std_normal_log_prob
from .sampler import FORMAT, PRETRAINED, APSSampler, load, pretrained, shipped_problem
from .train import TRAIN_OPTIONS, aps_loss, fit, train

__all__ = ["train", "fit", "load", "APSSampler", "VectorFlow", "ImageFlow", "elbo_weights",
           "neg_elbo", "prior_term", "aps_loss", "y_as_image", "pretrained", "shipped_problem",
           "PRETRAINED"]
