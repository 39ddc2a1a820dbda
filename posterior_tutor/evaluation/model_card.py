"""Evaluate a trained prior and write its model card (``README.md`` + ``samples.png``).

    python -m posterior_tutor.evaluation.model_card data/mnist_prior --data mnist

Quality number: the Frechet distance (``posterior_tutor.metrics.frechet``) between prior samples and the
held-out real images, in the feature space of the project's own digit classifier, printed next
to the real-vs-real floors recorded in that classifier's card (same set sizes).  The samples come
from the deterministic DDIM sampler (eta = 0) with 100 steps unless told otherwise.  The numbers
go into ``model_card.json`` under "quality" (the weights, and so the sha256, are unchanged).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..metrics import frechet
from .classifier import split_images
from ..files.checkpoints import load_prior
from ..files.shipped import names, pretrained
from ..files.safe import read_card, write_card as write_card_file


def prior_samples(den, n: int, steps: int, eta: float, seed: int, batch: int = 500) -> torch.Tensor:
    from ..samplers import sample
    g = torch.Generator().manual_seed(seed)
    parts = [sample("ddpm", den, None, None, n=min(batch, n - i), steps=steps, eta=eta, generator=g)
             for i in range(0, n, batch)]
    return torch.cat(parts).clamp(-1, 1)


def evaluate(folder, data: str, n: int | None = None, steps: int = 100, eta: float = 0.0,
             seed: int = 0, root=None) -> dict:
    """FD of n prior samples vs the held-out images (n defaults to the held-out size)."""
    folder = Path(folder)
    den = load_prior(folder / "prior.pt")
    clf = pretrained(data, "classifier")
    train_x, _, held_x, _ = split_images(data, root)
    n = len(held_x) if n is None else n
    if n < 1:
        raise ValueError(f"n must be a whole number >= 1 (prior samples), got {n!r}.")
    start = time.perf_counter()
    xs = prior_samples(den, n, steps, eta, seed)
    seconds = time.perf_counter() - start
    stride = max(1, len(train_x) // n)
    quality = {
        "sampler": f"ddpm(steps={steps}, eta={eta}) seed {seed}",
        "n_samples": n, "sampling_seconds": round(seconds, 1),
        "fd_samples_vs_heldout": round(frechet.digit_frechet(xs, held_x[:n], clf), 2),
        "fd_samples_vs_train": round(frechet.digit_frechet(xs, train_x[::stride][:n], clf), 2),
        "fd_train_vs_heldout": round(frechet.digit_frechet(train_x[::stride][:n], held_x[:n], clf), 2),
        "floors": json.loads((frechet.classifier_path(data).parent / "model_card.json")
                             .read_text())["floors"],
        "classifier_sha256": frechet.file_sha256(frechet.classifier_path(data)),
    }
    _save_grid(xs[:64], folder / "samples.png")
    _save_grid(train_x[:64], folder / "real.png")
    return quality


def _save_grid(x: torch.Tensor, path: Path) -> None:
    from torchvision.utils import save_image
    save_image((x + 1) / 2, path, nrow=8, padding=1, pad_value=1.0)


def write_card(folder, data: str, quality: dict, notes: str | None = None) -> None:
    folder = Path(folder)
    card_path = folder / "model_card.json"
    card = read_card(card_path)
    card["quality"] = quality
    if notes:
        card["notes"] = notes
    write_card_file(card_path, card)
    (folder / "README.md").write_text(card_markdown(folder.name, data, card))


def card_markdown(title: str, data: str, card: dict) -> str:
    q = card["quality"]
    floors = "\n".join(f"| {'reference' if k.startswith('noise') else 'real vs real'}: {k} | "
                       f"{v['n_a']} vs {v['n_b']} | {v['fd']:.1f} |" for k, v in q["floors"].items())
    notes = f"\n{card['notes']}\n" if card.get("notes") else ""
    mb = card["size_bytes"] / 1e6
    return f"""# {title}: a diffusion prior for {data} ({'x'.join(map(str, card['shape'][1:]))})

Trained by this project's own command (`{card['command']}`), on {card['n_train']} images of
`pt.data.load("{data}")` (split `{card['split']}`, subset `{card['subset']}`; the rest is held out
for evaluation). Load it with `pt.pretrained("{data}")` (sha256-checked,
`torch.load(weights_only=True)`).

| | |
|---|---|
| network | eps-prediction UNet, channels {card['config']['channels']}, attention {card['config']['attention']}, {card['parameters']:,} parameters |
| training | {card['steps']} steps, batch {card['batch']}, AdamW lr {card['config']['lr']}, EMA {card['config']['ema']}, seed {card['seed']} |
| hardware | {card['hardware']}, {card['processes']} process(es) |
| wall time | {card['wall_seconds'] / 60:.1f} min |
| file | prior.pt, {mb:.1f} MB, sha256 `{card['sha256'][:16]}...` |
| final DSM loss | {card['final_loss']} (sum over pixels, mean over the batch) |
{notes}
## Quality

Frechet distance in the 64-d feature space of the project's digit classifier
(`data/classifiers/{data}`, see `posterior_tutor/metrics/frechet.py`; FID's Inception weights are not
available offline). Samples: {q['sampler']}, {q['sampling_seconds']} s for {q['n_samples']}.
Lower is better; compare only at equal set sizes and with the same classifier.

| sets | sizes | FD |
|---|---|---|
| **prior samples vs held-out** | {q['n_samples']} vs {q['n_samples']} | **{q['fd_samples_vs_heldout']:.1f}** |
| prior samples vs training images | {q['n_samples']} vs {q['n_samples']} | {q['fd_samples_vs_train']:.1f} |
| real vs real: training images vs held-out (same sizes: the floor for the first row) | {q['n_samples']} vs {q['n_samples']} | {q['fd_train_vs_heldout']:.1f} |
{floors}

Samples (left: `samples.png`) and training images (right: `real.png`):

<img src="samples.png" width="45%"> <img src="real.png" width="45%">

Regenerate this card: `python -m posterior_tutor.evaluation.model_card data/{title} --data {data}`.
"""


def prior_folder(text: str) -> Path:
    """A folder holding ``prior.pt`` and ``model_card.json`` (a training run's --out), writable:
    the card, README.md and the sample grids are written there."""
    import argparse
    from ..runtime import cli
    folder = cli.writable_dir(text)
    missing = [f for f in ("prior.pt", "model_card.json") if not (folder / f).is_file()]
    if missing:
        raise argparse.ArgumentTypeError(f"{text!r} has no {' or '.join(missing)}; give the --out "
                                         "folder of a finished python -m posterior_tutor.priors."
                                         "train run")
    return folder


def build_parser():
    """Every flag checked at parse time (``posterior_tutor.runtime.cli``): exit code 2, one line."""
    from ..runtime import cli
    p = cli.Parser(prog="python -m posterior_tutor.evaluation.model_card")
    p.add_argument("folder", type=prior_folder)
    p.add_argument("--data", required=True, type=cli.choice(*names("classifier")))
    p.add_argument("--n", type=cli.positive_int, default=None,
                   help="prior samples (default: as many as held-out images)")
    p.add_argument("--steps", type=cli.positive_int, default=100)
    p.add_argument("--eta", type=cli.probability, default=0.0)
    p.add_argument("--seed", type=cli.nonnegative_int, default=0)
    p.add_argument("--threads", type=cli.positive_int, default=None)
    p.add_argument("--notes", default=None, help="free text kept in the card (e.g. machine load)")
    return p


def main(argv=None) -> None:
    a = build_parser().parse_args(argv)
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    quality = evaluate(a.folder, a.data, a.n, a.steps, a.eta, a.seed)
    write_card(a.folder, a.data, quality, a.notes)
    print(json.dumps({k: v for k, v in quality.items() if k != "floors"}, indent=1))


if __name__ == "__main__":
    main()
