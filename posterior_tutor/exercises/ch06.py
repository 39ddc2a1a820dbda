"""Chapter 06 exercises (APS): where a reverse-KL Gaussian lands, the log-density of an affine
coupling, the ELBO weight w_t, a variational sampler of one's own, what the shipped SR flow gains
over bilinear upsampling, and an amortized sampler in miniature.

Equations: log q(x) = log N(z; 0, I) - sum s(x_a), z = G^-1(x), for one affine coupling
x_a = z_a, x_b = z_b exp(s(z_a)) + t(z_a) (RealNVP; reference: autograd Jacobian);
w_t = beta_t / (2 alpha_t (1 - ab_t)) for t >= t_min, 0 below: the DDPM KL term
|mu_q - mu_theta|^2 / (2 sigma_t^2) with mu_q - mu_theta = beta_t / (sqrt(alpha_t) sqrt(1 - ab_t))
(eps_theta - eps) and sigma_t^2 = beta_t (reference: trained/aps/elbo.py, ``elbo_weights``).
The builds (06.4, 06.6) are scored by the sliced Wasserstein distance to the exact posterior as a
multiple of the noise floor (scoring.py, chapter 00).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import Exercise, Mistake, register
from .kinds import Prediction
from ..schedules import VPSchedule


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- 06.1 where the reverse-KL Gaussian lands (a prediction, a choice) ------------------------------
GAUSS_OPTIONS = ("on one mode", "spread over both modes", "in the gap between the modes")


def gauss_band(xs, posterior) -> str:
    """Which option samples ``xs`` of a fitted Gaussian fall in: one mode holds > 90% of them; else
    more than half lie where the posterior density is below 2% of its peak (the gap); else spread."""
    from ..metrics import mode_weights
    if mode_weights(xs, posterior).max() > 0.9:
        return GAUSS_OPTIONS[0]
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-3, 3, 121)] * 2, indexing="xy"), -1)
    peak = posterior.log_prob(grid.reshape(-1, 2)).max()
    low = (posterior.log_prob(xs) < peak + math.log(0.02)).double().mean()
    return GAUSS_OPTIONS[2] if low > 0.5 else GAUSS_OPTIONS[1]


register(Prediction(
    "06.1", "a Gaussian fitted by the reverse KL to the bimodal posterior: where does it land?",
    "gauss_fit", GAUSS_OPTIONS[0],
    lambda p, m: ("KL(q || p) = E_q[log q - log p]: wherever q puts mass and the posterior has "
                  "almost none, log q - log p is huge, so the fit avoids the gap and settles on "
                  "one mode (mode-seeking); it gives up the other mode's mass instead."),
    options=GAUSS_OPTIONS,
    feedback={GAUSS_OPTIONS[1]: "that is the answer of the *forward* KL(p || q), which matches "
              "the posterior's mean and covariance (mass-covering); the reverse KL is averaged "
              "under q, and a Gaussian spread over both modes has much of its mass in the gap.",
              GAUSS_OPTIONS[2]: "the gap is where the posterior has almost no mass: the reverse "
                                "KL's integrand log q - log p is largest there."},
    nudge="The reverse KL is an average under q, of log q - log p. Where is that integrand large?",
    hint="A single Gaussian cannot put mass on both modes without putting mass in the gap between "
         "them. Compare what each of the three options pays in the gap.",
    formula="KL(q || p) = E_{x ~ q}[log q(x) - log p(x | y)] is infinite-like where q > 0 and "
            "p ~ 0: the minimiser is mode-seeking, one mode with its local shape."))


# -- 06.2 the change of variables through an affine coupling --------------------------------------
def coupling_log_prob(x, s_net, t_net):
    """log q(x) for x = G(z), z ~ N(0, I): x_a = z_a, x_b = z_b exp(s(z_a)) + t(z_a), a the first
    half of the coordinates (d // 2)."""
    k = x.shape[1] // 2
    xa, xb = x[:, :k], x[:, k:]
    s = s_net(xa)
    z = torch.cat([xa, (xb - t_net(xa)) * torch.exp(-s)], 1)
    log_n = -0.5 * z.pow(2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)
    return log_n - s.sum(1)


def _coupling_ref(x, s_net, t_net):
    """log N(G^-1(x)) + log |det d G^-1 / dx|, the Jacobian by autograd, one sample at a time."""
    k = x.shape[1] // 2

    def inverse(v):
        va, vb = v[:k], v[k:]
        return torch.cat([va, (vb - t_net(va[None])[0]) * torch.exp(-s_net(va[None])[0])])

    out = []
    for v in x:
        z = inverse(v)
        J = torch.autograd.functional.jacobian(inverse, v)
        normal = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
        out.append(normal.log_prob(z).sum() + torch.linalg.slogdet(J)[1])
    return torch.stack(out).detach()


def _net(k_in, k_out, seed):
    torch.manual_seed(seed)  # a fixed, seeded small network
    net = nn.Sequential(nn.Linear(k_in, 16), nn.Tanh(), nn.Linear(16, k_out)).double()
    return net.requires_grad_(False)


def _coupling_cases():
    g, out = _gen(6), []
    rng = torch.random.get_rng_state()
    try:
        for d, seed in [(2, 10), (4, 11), (6, 12)]:
            k = d // 2
            out.append((1.5 * torch.randn(7, d, generator=g, dtype=torch.float64),
                        _net(k, d - k, seed), _net(k, d - k, seed + 100)))
    finally:
        torch.random.set_rng_state(rng)  # do not disturb the caller's global random stream
    return out


def _coupling_sign(x, s_net, t_net):
    return coupling_log_prob(x, s_net, t_net) + 2 * s_net(x[:, :x.shape[1] // 2]).sum(1)


def _coupling_no_const(x, s_net, t_net):
    return coupling_log_prob(x, s_net, t_net) + 0.5 * x.shape[1] * math.log(2 * math.pi)


def _coupling_no_inverse(x, s_net, t_net):
    s = s_net(x[:, :x.shape[1] // 2])
    return -0.5 * x.pow(2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi) - s.sum(1)


register(Exercise(
    "06.2", "the change of variables through an affine coupling layer",
    "coupling_log_prob(x, s_net, t_net) -> log q(x) (n,)",
    coupling_log_prob, _coupling_ref, _coupling_cases,
    [Mistake(_coupling_sign, "x_b = z_b exp(s) stretches volume by exp(sum s): log q(x) = "
             "log N(z) - sum s (a minus sign)."),
     Mistake(_coupling_no_const, "log N(z; 0, I) includes -d/2 log(2 pi)."),
     Mistake(_coupling_no_inverse, "evaluate the Gaussian at z = G^-1(x): z_b = (x_b - t(x_a)) "
             "exp(-s(x_a)), not at x.")],
    nudge="Two steps: undo the layer to find the z that produced x, then ask how much the layer "
          "stretches volume around it.",
    hint="x_a passes through unchanged, so s and t can be evaluated on x_a directly; the Jacobian "
         "of z -> x is triangular, and its diagonal holds ones and the stretch factors of x_b.",
    formula="z = [x_a, (x_b - t(x_a)) exp(-s(x_a))]; log q(x) = -|z|^2 / 2 - (d/2) log(2 pi) - "
            "sum_i s_i(x_a).", rtol=1e-6, atol=1e-8))


# -- 06.3 the ELBO weight --------------------------------------------------------------------------
def elbo_weights(sched, t_min=1):
    """w_t = beta_t / (2 alpha_t (1 - ab_t)), alpha_t = 1 - beta_t; zero for t < t_min."""
    b, ab = sched.betas, sched.alpha_bar
    w = b / (2 * (1 - b) * (1 - ab))
    w[:t_min] = 0
    return w


def _elbo_ref(sched, t_min=1):
    from ..trained.aps.elbo import elbo_weights as library_weights   # torch.nn loads here
    return library_weights(sched, t_min)


def _elbo_cases():
    return [(VPSchedule(), 1), (VPSchedule(T=200, beta_end=0.05), 10), (VPSchedule(), 50)]


def _cut(w, t_min):
    w[:t_min] = 0
    return w


register(Exercise(
    "06.3", "the ELBO weight w_t of APS's prior term, from the DDPM bound",
    "elbo_weights(sched, t_min=1) -> w (T,)", elbo_weights, _elbo_ref, _elbo_cases,
    [Mistake(lambda s, t_min=1: _cut(s.betas / (2 * (1 - s.alpha_bar)), t_min),
             "the mean difference carries 1 / sqrt(alpha_t): its square leaves alpha_t = 1 - beta_t "
             "in the denominator."),
     Mistake(lambda s, t_min=1: _cut(s.betas / (2 * s.alpha_bar * (1 - s.alpha_bar)), t_min),
             "the 1 / sqrt(alpha_t) of the reverse mean is the one-step alpha_t = 1 - beta_t "
             "(sched.betas), not abar_t."),
     Mistake(lambda s, t_min=1: _cut(s.betas / ((1 - s.betas) * (1 - s.alpha_bar)), t_min),
             "the KL between two Gaussians of variance sigma^2 is |mu_1 - mu_2|^2 / (2 sigma^2): "
             "keep the 2."),
     Mistake(lambda s, t_min=1: _cut(s.betas ** 2 / (2 * (1 - s.betas) * (1 - s.alpha_bar)),
                                     t_min),
             "divide the squared mean difference by the variance sigma_t^2 = beta_t: one beta_t "
             "cancels."),
     Mistake(lambda s, t_min=1: _cut(s.betas / (2 * (1 - s.betas) * (1 - s.alpha_bar)), 1),
             "set every w_t with t < t_min to 0.")],
    nudge="Each term of the bound is a KL between two Gaussians with the same variance; only "
          "their means differ, and both means are written with a noise vector.",
    hint="Subtract the two means: x_t cancels and what is left is a constant times "
         "(eps_theta - eps). Square that constant and divide by twice the variance beta_t.",
    formula="mu_q - mu_theta = beta_t / (sqrt(alpha_t) sqrt(1 - ab_t)) (eps_theta - eps), so "
            "w_t = beta_t^2 / (2 beta_t alpha_t (1 - ab_t)) = beta_t / (2 alpha_t (1 - ab_t)); "
            "0 for t < t_min.", rtol=1e-8, atol=1e-12))


# -- 06.5 the shipped SR flow against bilinear upsampling (a prediction, a choice) --------------
SR_OPTIONS = ("more than 2 dB better than bilinear", "within 2 dB of bilinear",
              "more than 2 dB worse than bilinear")


def sr_band(gain_db: float) -> str:
    """Which option a measured PSNR(flow mean) - PSNR(bilinear upsampling of y) falls in."""
    return SR_OPTIONS[0] if gain_db > 2 else SR_OPTIONS[2] if gain_db < -2 else SR_OPTIONS[1]


register(Prediction(
    "06.5", "the shipped 4x super-resolution flow: its mean against bilinear upsampling of y",
    "sr_flow_vs_bilinear", SR_OPTIONS[1],
    lambda p, m: ("At 4x on 32 x 32 digits y holds 64 numbers for 1024 pixels; the flow's last "
                  "layer starts from the upsampled y, and its training did not take its mean far "
                  "from there, while DPS with the same prior does (the model card's comparison): "
                  "an amortized sampler is as good as its family and its training reached."),
    options=SR_OPTIONS,
    feedback={SR_OPTIONS[0]: "the 16 x 16 digits flow of section 4 gains that much at 2x; at "
              "4x the map from y to a digit is far harder to learn.",
              SR_OPTIONS[2]: "the flow's last layer starts from the bilinear upsampling of y: "
                             "training moves it away only where that helps the loss."},
    nudge="An amortized sampler is limited by its family and its training, not only by the prior. "
          "What does the flow start from before training?",
    hint="Look at the model card's DPS comparison (same prior, same measurements) and at how "
         "much the flow's last layer relies on the upsampled y.",
    formula="gain = PSNR(mean of the flow's samples, x) - PSNR(bilinear(y), x), averaged over "
            "held-out measurements; the bands are > 2 dB, -2 to 2 dB, < -2 dB."))
