"""Real image data sets, as float tensors (n, 1, H, W) in [-1, 1].

    x = pt.data.load("digits")                   # always available (ships inside scikit-learn)
    x, labels = pt.data.load("mnist", split="test", labels=True)
    x = pt.data.load("olivetti", size=32)

| name      | source                                   | native | default size | split          |
|-----------|------------------------------------------|--------|--------------|----------------|
| digits    | ``sklearn.datasets.load_digits`` (1,797) | 8x8    | 16x16        | all            |
| mnist     | LeCun et al., IDX files (60k train, 10k test) | 28x28 | 32x32 (zero-padded by 2, as in DDPM MNIST code) | train / test |
| olivetti  | AT&T faces via ``sklearn.datasets.fetch_olivetti_faces`` (400) | 64x64 | 64x64 | all |
| kmnist    | Kuzushiji-MNIST test split (10k), out-of-distribution checks | 28x28 | 32x32 | test |

Where the files come from, in order:
1. ``root=`` if given, else the folder in the environment variable ``POSTERIOR_TUTOR_DATA``
   (a local copy for offline use; for MNIST it holds ``mnist/t10k-images-idx3-ubyte.gz`` etc.);
2. the cache folder (``POSTERIOR_TUTOR_CACHE`` or ``~/.cache/posterior_tutor``);
3. a download from the public mirrors into the cache, checked against the published md5.
Offline with no local copy, ``DataUnavailable`` says which file to put where.

Digits are upsampled from 8x8 to 16x16 by bilinear interpolation (so that 4x super-resolution
still leaves a 4x4 measurement); pass ``size=8`` for the native images.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

NAMES = ("digits", "mnist", "olivetti", "kmnist")

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://yann.lecun.com/exdb/mnist/")
MNIST_FILES = {  # published md5 checksums (the same ones torchvision checks)
    ("train", "images"): ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train", "labels"): ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("test", "images"): ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
KMNIST_URL = "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"
KMNIST_FILES = {"images": "kmnist-test-imgs.npz", "labels": "kmnist-test-labels.npz"}
OLIVETTI_FILE = "olivetti_faces_uint8_400x64x64.npy"
OLIVETTI_SHA256 = "f4675846a7737863b5913460418a189c76b9a9d911df1098179bf8d67e254408"

DOWNLOAD_TIMEOUT = 20.0  # seconds without an answer before a mirror counts as unreachable

DEFAULT_SIZE = {"digits": 16, "mnist": 32, "olivetti": 64, "kmnist": 32}


class DataUnavailable(RuntimeError):
    """A data set could be neither found locally nor downloaded."""


def cache_dir() -> Path:
    return Path(os.environ.get("POSTERIOR_TUTOR_CACHE",
                               Path.home() / ".cache" / "posterior_tutor")).expanduser()


def local_root(root=None) -> Path | None:
    root = root if root is not None else os.environ.get("POSTERIOR_TUTOR_DATA")
    return Path(root).expanduser() if root else None


def load(name: str, split: str = "test", root=None, size: int | None = None, labels: bool = False,
         limit: int | None = None, download: bool = True):
    """Images (n, 1, size, size) in [-1, 1] (and integer labels if ``labels=True``).

    ``split`` matters for MNIST only ("train" or "test"); ``limit`` keeps the first n images."""
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(NAMES)}.")
    if name == "mnist" and split not in ("train", "test"):
        raise ValueError(f"MNIST split must be 'train' or 'test', got {split!r}.")
    if name == "kmnist" and split != "test":
        raise ValueError("only the KMNIST test split is supported (split='test').")
    images, targets = _LOADERS[name](split, local_root(root), download, labels)
    x = torch.tensor(np.asarray(images), dtype=torch.float32)[:, None]
    x = x / (16.0 if name == "digits" else 255.0) * 2 - 1
    size = size or DEFAULT_SIZE[name]
    x = resize(x, size, pad_from=28 if name in ("mnist", "kmnist") else None)
    if limit is not None:
        x = x[:limit]
    if not labels:
        return x
    y = torch.tensor(np.asarray(targets), dtype=torch.long)
    return x, (y if limit is None else y[:limit])


def resize(x: torch.Tensor, size: int, pad_from: int | None = None) -> torch.Tensor:
    """MNIST-like 28x28 -> 32x32 by padding with background (-1); other sizes by interpolation."""
    if x.shape[-1] == size:
        return x
    if pad_from == x.shape[-1] and size > x.shape[-1] and (size - x.shape[-1]) % 2 == 0:
        p = (size - x.shape[-1]) // 2
        return F.pad(x, (p, p, p, p), value=-1.0)
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=size < x.shape[-1],
                         align_corners=False).clamp(-1, 1)


# -- digits (always available) ----------------------------------------------------------------
def _digits(split, root, download, labels=True):
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.images.astype(np.float32), d.target


# -- MNIST ----------------------------------------------------------------------------------------
def _mnist(split, root, download, labels=True):
    kinds = ("images", "labels") if labels else ("images",)
    paths = {kind: _mnist_file(split, kind, root, download) for kind in kinds}
    missing = [MNIST_FILES[(split, kind)][0] for kind, path in paths.items() if path is None]
    if missing:
        raise DataUnavailable(_offline_message("MNIST", missing, "mnist", root, MNIST_MIRRORS))
    imgs = _read_idx(paths["images"])
    if not labels:
        return imgs, None
    labs = _read_idx(paths["labels"])
    if imgs.shape[0] != labs.shape[0]:
        raise DataUnavailable(f"MNIST {split}: {imgs.shape[0]} images but {labs.shape[0]} labels.")
    return imgs, labs


def _mnist_file(split, kind, root, download) -> Path | None:
    """The checked file, found locally or downloaded; None when neither works."""
    fname, md5 = MNIST_FILES[(split, kind)]
    for path in _candidates(root, "mnist", fname):
        if path.is_file():
            if _md5(path) != md5:
                raise DataUnavailable(
                    f"{path} is corrupt (md5 {_md5(path)}, expected {md5}). Delete it and load again.")
            return path
    if download:
        for mirror in MNIST_MIRRORS:
            if _download(mirror + fname, cache_dir() / "mnist", fname, md5):
                return cache_dir() / "mnist" / fname
    return None


def _read_idx(path: Path) -> np.ndarray:
    """The IDX format of the MNIST files: magic (dtype, ndim), ndim big-endian sizes, then data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


# -- KMNIST (out-of-distribution checks) ----------------------------------------------------------
def _kmnist(split, root, download, labels=True):
    paths = {}
    for kind in ("images", "labels") if labels else ("images",):
        fname = KMNIST_FILES[kind]
        path = next((p for p in _candidates(root, "kmnist", fname) if p.is_file()), None)
        if path is None and download and _download(KMNIST_URL + fname, cache_dir() / "kmnist", fname):
            path = cache_dir() / "kmnist" / fname
        paths[fname] = path
    missing = [fname for fname, path in paths.items() if path is None]
    if missing:
        raise DataUnavailable(_offline_message("KMNIST", missing, "kmnist", root, [KMNIST_URL]))
    arrays = [np.load(path)["arr_0"] for path in paths.values()]
    return arrays[0], (arrays[1] if labels else None)


# -- Olivetti faces -------------------------------------------------------------------------------
def _olivetti(split, root, download, labels=True):
    path = next((p for p in _candidates(root, "olivetti", OLIVETTI_FILE) if p.is_file()), None)
    if path is not None:
        if _sha256(path) != OLIVETTI_SHA256:
            raise DataUnavailable(f"{path} is corrupt (sha256 mismatch). Delete it and load again.")
        images = np.load(path, allow_pickle=False)
    elif download:
        images = _fetch_olivetti()
    else:
        raise DataUnavailable(_offline_message("Olivetti faces", [OLIVETTI_FILE], "olivetti", root,
                                               ["sklearn.datasets.fetch_olivetti_faces()"]))
    return images.astype(np.float32), np.arange(400) // 10


def _fetch_olivetti() -> np.ndarray:
    from sklearn.datasets import fetch_olivetti_faces
    try:
        faces = fetch_olivetti_faces(data_home=str(cache_dir() / "sklearn")).images
    except Exception as err:  # sklearn raises URLError/OSError offline
        raise DataUnavailable(_offline_message(
            "Olivetti faces", [OLIVETTI_FILE], "olivetti", None,
            ["sklearn.datasets.fetch_olivetti_faces()"]) + f" (download failed: {err})") from None
    images = np.round(faces * 255).astype(np.uint8)
    out = cache_dir() / "olivetti"
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / OLIVETTI_FILE, images)
    return images


# -- helpers ---------------------------------------------------------------------------------------
def _candidates(root: Path | None, sub: str, fname: str) -> list[Path]:
    """Where a file may already be, in order: root/sub/fname, root/fname, the cache."""
    local = [root / sub / fname, root / fname] if root else []
    return local + [cache_dir() / sub / fname]


def _download(url: str, folder: Path, fname: str, md5: str | None = None) -> bool:
    """torchvision's download_url (redirects, md5 check); False when offline or unreachable."""
    import socket
    from torchvision.datasets.utils import download_url
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # a firewalled network fails fast, not in minutes
    try:
        download_url(url, str(folder), fname, md5)
    except Exception:  # offline: URLError / OSError / RuntimeError on a bad checksum
        (folder / fname).unlink(missing_ok=True)
        return False
    finally:
        socket.setdefaulttimeout(previous)
    return (folder / fname).is_file()


def _offline_message(what, fnames, sub, root, sources) -> str:
    """Every missing file at once, and the two places where putting them works."""
    files = ", ".join(fnames)
    them = "it" if len(fnames) == 1 else f"all {len(fnames)}"
    folder = (f"{root}/{sub}/ (the root= you gave)" if root else
              f"DIR/{sub}/ for a folder DIR of your choice, then set POSTERIOR_TUTOR_DATA=DIR "
              f"(or pass root=DIR)")
    return (f"{what} is not available: {files} {'was' if len(fnames) == 1 else 'were'} not found "
            f"locally and could not be downloaded from {', '.join(sources)}. Offline, copy "
            f"{them} into {folder}; or copy {them} into the cache folder {cache_dir() / sub}/, "
            f"which is searched with nothing set.")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_LOADERS = {"digits": _digits, "mnist": _mnist, "olivetti": _olivetti, "kmnist": _kmnist}
