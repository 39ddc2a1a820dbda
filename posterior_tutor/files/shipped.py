"""Everything the repository ships under data/, in one table, and the one lookup that loads it.

    SHIPPED: (kind, name, folder under data/, file, task of pt.tasks, sigma, prior)

    den = pt.pretrained("mnist")                                # kind="prior": a Denoiser
    ud = pt.pretrained("mnist-sr4", kind="ud2m", den=den)       # = pt.ud2m.pretrained("mnist-sr4", den)
    fl = pt.pretrained("mnist-sr4", kind="aps")                 # = pt.aps.pretrained("mnist-sr4")
    clf = pt.pretrained("mnist", kind="classifier")             # the FID / accuracy classifier

One signature for every kind, ``pretrained(name, kind="prior", *, den=None, device=None,
check=True)``.  The name comes first and alone, as every caller already wrote it
(``pt.pretrained("mnist")``); names repeat across kinds ("mnist" is a prior and a classifier,
"mnist-sr4" a UD2M sampler and an APS flow), so ``kind`` says which rows to look in, as an
argument rather than a prefix to parse out of the name ("ud2m/mnist-sr4"), so that a wrong kind
gets its own error.  The rest is keyword-only, so a device is never read as a kind.
``pt.ud2m.pretrained(name, den=None, device=None, check=True)`` and ``pt.aps.pretrained`` (same)
are this call with ``kind`` fixed.
``den`` (trained samplers only) is the prior the sampler was trained on, the row's ``prior``,
loaded on ``device`` when not given; ``check=False`` loads a file whose model card is missing
(unverified).  Each file is sha256-checked against the ``model_card.json`` beside it
(``checkpoints.read_verified``); a missing file says how to get it back (``shipped_path``).

The table lives here, in ``files/``, because every consumer (priors, trained samplers, metrics,
the benchmark) already imports ``files/`` and ``files/`` imports none of them: a trained kind's
class is named in ``TRAINED`` and imported by name when a row of its kind is asked for.  A new shipped file
is one row here, its folder in data/ with a model card, and, for a new kind, one loader below.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["Shipped", "SHIPPED", "KINDS", "names", "entry", "pretrained"]


class Shipped(NamedTuple):
    kind: str                   # one of KINDS
    name: str                   # the public name, e.g. "mnist-sr4"
    folder: str                 # data/<folder>/
    filename: str               # the file in that folder
    task: str | None = None     # the pt.tasks task a trained sampler was trained on
    sigma: float | None = None  # the measurement noise it was trained on
    prior: str | None = None    # the shipped prior it was trained on (kind "prior")


SHIPPED = (
    Shipped("prior", "digits", "digits_prior", "prior.pt"),
    Shipped("prior", "mnist", "mnist_prior", "prior.pt"),
    Shipped("classifier", "digits", "classifiers/digits", "classifier.pt"),
    Shipped("classifier", "mnist", "classifiers/mnist", "classifier.pt"),
    Shipped("ud2m", "mnist-random-inpainting", "ud2m_mnist_random_inpainting", "sampler.pt",
            "random_inpainting", 0.05, "mnist"),
    Shipped("ud2m", "mnist-sr4", "ud2m_mnist_sr4", "sampler.pt", "sr4", 0.05, "mnist"),
    Shipped("aps", "mnist-denoising", "aps_mnist_denoising", "flow.pt", "denoising", 0.05, "mnist"),
    Shipped("aps", "mnist-sr4", "aps_mnist_sr4", "flow.pt", "sr4", 0.05, "mnist"),
)

#: kind -> what it is, in messages
KINDS = {"prior": "prior", "classifier": "classifier", "ud2m": "UD2M sampler", "aps": "APS flow"}


def names(kind: str) -> tuple:
    """The shipped files of ``kind``, by name."""
    _check_kind(kind)
    return tuple(s.name for s in SHIPPED if s.kind == kind)


def entry(kind: str, name: str) -> Shipped:
    """The row of the shipped ``name`` of ``kind``, or a ValueError listing the others."""
    for s in SHIPPED:
        if s.kind == kind and s.name == name:
            return s
    raise ValueError(f"unknown pretrained {KINDS[kind]} {name!r}; shipped: "
                     f"{', '.join(names(kind))}.")


def pretrained(name: str = "mnist", kind: str = "prior", *, den=None, device=None,
               check: bool = True):
    """The shipped ``name`` of ``kind`` (a row of ``SHIPPED``), sha256-checked.

    kind "prior": a Denoiser; "classifier": a DigitClassifier; "ud2m" / "aps": a trained sampler
    on ``den`` (the shipped prior it was trained on, loaded on ``device`` when not given; another
    prior is refused), whose default problem is its training task at its sigma.  ``check=False``
    loads without the model card's sha256 (for a file whose card is missing)."""
    _check_kind(kind)
    row = entry(kind, name)
    if not isinstance(check, bool):
        raise ValueError(f"check must be True or False, got {check!r}.")
    if den is not None and row.prior is None:
        raise ValueError(f"den= is for a trained sampler (kind 'ud2m' or 'aps'); a shipped {kind} "
                         f"loads on its own (got den={type(den).__name__}).")
    if den is not None and device is not None:
        raise ValueError(f"pass den= or device=, not both: the {KINDS[kind]} runs on its prior's "
                         "device (move the prior with den.to(device)).")
    if device is not None:
        from ..runtime.config import resolve_device
        device = resolve_device(device, what="device")
    return _LOADERS[kind](row, den, device, check)


def _check_kind(kind) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} of shipped file; use one of {', '.join(KINDS)}.")


#: how to rebuild a missing file of a kind whose folder has no README with the command
RETRAIN = {"classifier": "python scripts/train_classifier.py --data {name} --out data/{folder}"}


def _path(row: Shipped):
    from .checkpoints import shipped_path
    retrain = RETRAIN[row.kind].format(**row._asdict()) if row.kind in RETRAIN else None
    return shipped_path(row.folder, row.filename, f"{row.name} {KINDS[row.kind]}", retrain)


def _prior(row, den, device, check):
    from .checkpoints import load_prior
    den = load_prior(_path(row), check)
    return den.to(device) if device is not None else den


def _classifier(row, den, device, check):
    from ..metrics.frechet import load_classifier
    clf = load_classifier(_path(row), check)
    return clf.to(device) if device is not None else clf


#: the class that loads each trained kind, named (not imported) so that files/ stays below the
#: trained samplers in the layers; it is imported on first use
TRAINED = {"ud2m": "posterior_tutor.trained.ud2m.sampler:UD2MSampler",
           "aps": "posterior_tutor.trained.aps.sampler:APSSampler"}


def _trained(row, den, device, check):
    import importlib
    module, name = TRAINED[row.kind].split(":")
    cls = getattr(importlib.import_module(module), name)
    if den is None:
        den = pretrained(row.prior, "prior", device=device, check=check)
    return cls.from_shipped(row, den, check, label=f"{KINDS[row.kind]} {row.name}")


_LOADERS = {"prior": _prior, "classifier": _classifier, "ud2m": _trained, "aps": _trained}
