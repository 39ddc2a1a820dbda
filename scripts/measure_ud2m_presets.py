"""The shipped UD2M samplers under each noise bookkeeping (``trained/ud2m/presets.py``), on
the stored benchmark's digits and measurements (docs/benchmark/ud2m_vs_dps: mnist test[8000:8004],
masks seeded 100 + i, y and samples seeded 0 + i, 32 samples each), with the benchmark's own
``bench_images.measure``: PSNR of a single sample, PSNR of the mean, 90% coverage.

    python scripts/measure_ud2m_presets.py [--images 4] [--samples 32] [--json out.json] [--device cuda]

Rows: the shipped (trained) sampler and the untrained one (adapters at zero, same K, N and
sigma_factor) under "ours", "code" and "ours" with one part of the code's bookkeeping.
"""
from __future__ import annotations

import json

import torch

import posterior_tutor as pt
from posterior_tutor import tasks
from posterior_tutor.runtime import cli
from posterior_tutor.evaluation import image_suite as bench_images
from posterior_tutor.trained.ud2m.presets import PARTS

PRESETS = ["ours", "code"] + [f"ours+code_{p}" for p in PARTS]


def untrained_like(ud, den):
    problem = ud.problem
    xs = torch.zeros((1, *ud.shape), device=den.device)
    return pt.ud2m.train(den, problem, xs, steps=0, K=ud.K, N=ud.N, eta=ud.config["eta"],
                         sigma_factor=ud.config["sigma_factor"], rank=ud.config["rank"],
                         lora_layers=ud.config["layers"], adv_weight=0.0)


def build_parser():
    """Every flag checked at parse time (``posterior_tutor.runtime.cli``): exit code 2, one line."""
    ap = cli.Parser(prog="python scripts/measure_ud2m_presets.py",
                    description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=cli.positive_int, default=4)
    ap.add_argument("--samples", type=cli.positive_int, default=32)
    ap.add_argument("--json", type=cli.writable_file, default=None)
    ap.add_argument("--device", type=cli.device, default=None,
                    help="cpu, cuda or cuda:N (default: CUDA when present)")
    return ap


def main(argv=None):
    a = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    device = pt.runtime.config.resolve_device(a.device, exit_on_error=True)
    den = pt.pretrained("mnist", device=device)
    den.clip = 1.0
    xs_true, source = bench_images.test_images(a.images, den, 0)
    rows = []
    for task in ("random_inpainting", "sr4"):
        shipped = pt.ud2m.pretrained(f"mnist-{task.replace('_', '-')}", den)
        for which, ud in (("shipped", shipped), ("untrained", untrained_like(shipped, den))):
            for preset in PRESETS:
                run_ud = ud.with_preset(preset)

                def run(problem, y, n, g, u=run_ud):
                    return u.sample(y, n, generator=g, problem=problem)

                q, *_ = bench_images.measure(run, den, task, xs_true, a.samples, 0)
                rows.append(dict(task=task, sampler=which, preset=preset, psnr_single=q[0],
                                 psnr_mean=q[1], coverage=q[5],
                                 K=ud.K, N=ud.N, sigma_factor=ud.config["sigma_factor"]))
                print(f"| {task} | {which} | {preset} | {q[0]:.2f} | {q[1]:.2f} | {q[5]:.3f} |",
                      flush=True)
    print(f"({source}, {a.images} images x {a.samples} samples; columns: PSNR single, PSNR of the "
          "mean, 90% coverage)")
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
