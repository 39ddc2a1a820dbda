"""The README.md of a shipped APS flow (``train_aps_mnist.py`` writes it from the model card)."""
from __future__ import annotations

from posterior_tutor.files.recipes import recipe_line


def readme(card, task, name):
    m, k = card["metrics"]["held_out_mnist"], card["metrics"]["kmnist_out_of_distribution"]
    base = "y itself" if task == "denoising" else "y upsampled bilinearly"
    row = (" | {psnr_mean:.2f} | {psnr_single:.2f} | {ssim_mean:.3f} | {psnr_baseline:.2f} | "
           "{chi2_per_dim:.2f} | {coverage90:.3f} |")
    return f"""# APS flow: {card['task']}

A conditional normalising flow q(x | y) trained by `posterior_tutor.trained.aps` (APS, Mammadov,
Chung, Ye 2024) against the shipped diffusion prior `data/mnist_prior`: reverse KL with the
diffusion ELBO (importance-sampled t, gradients through the frozen prior) in place of log p.

    den = pt.pretrained("mnist")
    fl = pt.aps.pretrained("{name}", den)   # sha256-checked against model_card.json
    y = fl.problem.measure(x_true)                 # x_true: (1, 32, 32) in [-1, 1]
    xs = fl.sample(y, n=128)                       # one flow pass for all 128 samples

Training: {card['data']}; {card['steps']} of {card['steps_planned']} planned steps
(stopped: {card['stopped']}), options {card['options']}, {card['hardware']},
{card['wall_seconds'] / 60:.1f} min{', resumed from ' + card['resumed_from'] if card['resumed_from'] else ''}.
Command: `{card['command']}`{recipe_line(card)}{sessions_line(card.get('sessions', []))}

Evaluation, {m['images']} measurements each, {m['samples_per_image']} samples per measurement
(baseline: {base}; chi^2 = |y - A x|^2 / (m sigma^2), 1 when calibrated):

| data | PSNR mean | PSNR single | SSIM mean | baseline PSNR | chi^2 / dim | 90% coverage |
|---|---|---|---|---|---|---|
| MNIST held out{row.format(**m)}
| KMNIST (out of distribution){row.format(**k)}

`samples.png`: truth, y, the 128-sample mean and three samples for six held-out digits.

Seconds per sample (batch of {m['samples_per_image']}, CPU): {m['seconds_per_sample']:.2e}.
{dps_lines(card['metrics'].get('dps_comparison'))}
sha256 of `flow.pt`: `{card['sha256']}` (checked on loading).
"""


def sessions_line(sessions):
    """One line per training session when the run was resumed (its settings and first step)."""
    if len(sessions) < 2:
        return ""
    return "\nSessions: " + "; ".join(f"from step {s['from_step']}: " + ", ".join(
        f"{k} {v}" for k, v in s.items() if k != "from_step") for s in sessions) + "."


def dps_lines(c):
    if not c:
        return ""
    a, d = c["aps"], c["dps"]
    return (f"\nAgainst DPS in the same run ({c['measurements']}; APS {a['samples']} samples, DPS "
            f"{d['samples']}): PSNR of the mean {a['psnr_mean']:.2f} vs {d['psnr_mean']:.2f} dB, "
            f"single {a['psnr_single']:.2f} vs {d['psnr_single']:.2f}, SSIM of the mean "
            f"{a['ssim_mean']:.3f} vs {d['ssim_mean']:.3f}; seconds per sample "
            f"{a['seconds_per_sample']:.2e} vs {d['seconds_per_sample']:.2f}: APS is "
            f"**{c['speedup']:,.0f}x** faster.\n")
