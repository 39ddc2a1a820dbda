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

Files come from, in order: ``root=``, else ``POSTERIOR_TUTOR_DATA`` (an offline copy, e.g.
``mnist/t10k-images-idx3-ubyte.gz``); the cache (``POSTERIOR_TUTOR_CACHE`` or ``~/.cache/
posterior_tutor``; both read by ``runtime.config.folder_setting``); a download into the cache.
Every file, wherever it came from, must match its checksum (``FileSpec``: MNIST's published md5,
the sha256 of reference KMNIST and Olivetti files), parse, and hold a uint8 array of the expected
shape; a file that does not is a ``DataUnavailable`` naming it and the way out (delete it to
download it again, or point ``POSTERIOR_TUTOR_DATA`` / ``root=`` at a good copy), a bad download
is deleted, and offline with no copy the error says which file to put where.

``size`` and ``limit`` are ints >= 1 (not bools); ``size`` is at most ``MAX_UPSCALE`` x native, as
upsampling adds no detail while memory grows as n * size^2.  Digits are upsampled from 8x8 to 16x16
(bilinear, so that 4x super-resolution still leaves a 4x4 measurement); ``size=8`` is native.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import socket
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from posterior_tutor.runtime.config import folder_setting

NAMES = ("digits", "mnist", "olivetti", "kmnist")
SPLITS = {"digits": ("all", "train", "test"), "mnist": ("train", "test"),
          "olivetti": ("all", "train", "test"), "kmnist": ("test",)}
NATIVE = {"digits": 8, "mnist": 28, "olivetti": 64, "kmnist": 28}
DEFAULT_SIZE = {"digits": 16, "mnist": 32, "olivetti": 64, "kmnist": 32}
MAX_UPSCALE = 4  # size <= 4 x native: upsampling adds no detail, memory grows as size^2


class FileSpec(NamedTuple):
    """A data file: name, shape of its uint8 array, checksum (sha256 checked if given, else md5)."""
    name: str
    shape: tuple
    md5: str | None = None
    sha256: str | None = None


MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
MNIST_FILES = {(split, kind): FileSpec(fname, shape, md5) for split, kind, fname, shape, md5 in (
    ("train", "images", "train-images-idx3-ubyte.gz", (60000, 28, 28), "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train", "labels", "train-labels-idx1-ubyte.gz", (60000,), "d53e105ee54ea40749a09fcbcd1e9432"),
    ("test", "images", "t10k-images-idx3-ubyte.gz", (10000, 28, 28), "9fb629c4189551a2d022fa330f9573f3"),
    ("test", "labels", "t10k-labels-idx1-ubyte.gz", (10000,), "ec29112dd5afa0611ce80d1b7f02629c"))}
KMNIST_URL = "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"  # checksums of the files published there
KMNIST_FILES = {("test", kind): FileSpec(fname, shape, md5, sha256) for kind, fname, shape, md5, sha256 in (
    ("images", "kmnist-test-imgs.npz", (10000, 28, 28), "dace6de62ca8b90843cc45366337d02e",
     "692d824896bec8f3c357ebf7a0fe904ed67ac632ce953d0b58f7fbef7bb27d87"),
    ("labels", "kmnist-test-labels.npz", (10000,), "3ae489a79983d0fe386152684e3b5412",
     "660f13a4705431ea2a6391c41ecbe384cd0d932c595a101ec4f3b8989e785046"))}
OLIVETTI_FILE = "olivetti_faces_uint8_400x64x64.npy"
OLIVETTI = FileSpec(OLIVETTI_FILE, (400, 64, 64), sha256="f4675846a7737863b5913460418a189c76b9a9d911df1098179bf8d67e254408")
OLIVETTI_SOURCE = ["sklearn.datasets.fetch_olivetti_faces()"]

DOWNLOAD_TIMEOUT = 20.0  # seconds without an answer before a mirror counts as unreachable
PARSE_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


class DataUnavailable(RuntimeError):
    """A data set could be neither found locally nor downloaded, or a file of it is corrupt."""


def cache_dir() -> Path:
    return folder_setting("POSTERIOR_TUTOR_CACHE") or Path.home() / ".cache" / "posterior_tutor"


def local_root(root=None) -> Path | None:
    return Path(root).expanduser() if root is not None else folder_setting("POSTERIOR_TUTOR_DATA")


def load(name: str, split: str = "test", root=None, size: int | None = None, labels: bool = False,
         limit: int | None = None, download: bool = True):
    """Images (n, 1, size, size) in [-1, 1] (and labels if ``labels=True``), the first ``limit``;
    ``split``: MNIST "train"/"test"; digits, olivetti "all"/"train"/"test" (each the whole set)."""
    _check_arguments(name, split, root, size, labels, limit, download)
    images, targets = _LOADERS[name](split, local_root(root), download, labels)
    n, pad = len(images), (28 if name in ("mnist", "kmnist") else None)
    if limit is not None and limit > n:
        raise ValueError(f"load(limit={limit!r}): {name} has only {n} images"
                         f"{'' if 'all' in SPLITS[name] else ' in split ' + repr(split)}; "
                         f"accepted: an int from 1 to {n}, or None for all of them.")
    x = torch.tensor(np.asarray(images[:limit]), dtype=torch.float32)[:, None]
    x = x / (16.0 if name == "digits" else 255.0) * 2 - 1
    x = resize(x, DEFAULT_SIZE[name] if size is None else int(size), pad_from=pad)
    return (x, torch.tensor(np.asarray(targets[:limit]), dtype=torch.long)) if labels else x


def _check_arguments(name, split, root, size, labels, limit, download) -> None:
    """Every argument of ``load``, checked before any file is opened."""
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"load(name={name!r}): unknown data set {name!r}; accepted: "
                         f"{', '.join(NAMES)}.")
    if not isinstance(split, str) or split not in SPLITS[name]:
        note = " (one set: each gives all of it)" if "all" in SPLITS[name] else ""
        raise ValueError(f"load(split={split!r}): not a split of {name}; accepted: "
                         f"{', '.join(map(repr, SPLITS[name]))}{note}.")
    if root is not None and (not isinstance(root, (str, os.PathLike)) or not str(root).strip()
                             or Path(root).expanduser().is_file()):
        raise ValueError(f"load(root={root!r}) is not a folder path; accepted: a str or "
                         f"pathlib.Path naming a folder (it may not exist yet), or None.")
    high = MAX_UPSCALE * NATIVE[name]
    counts = (("size", size, high, f"an int from 1 to {high} ({MAX_UPSCALE}x the native {NATIVE[name]}"
               f"x{NATIVE[name]} of {name}: larger adds no detail and costs memory as n*size^2), "
               f"or None for the default {DEFAULT_SIZE[name]}"),
              ("limit", limit, None, "an int >= 1, or None for all images"))
    for arg, value, most, accepted in counts:   # an int (a bool is not one) in [1, most]
        if value is not None and (isinstance(value, (bool, np.bool_))
                                  or not isinstance(value, (int, np.integer))):
            raise TypeError(f"load({arg}={value!r}) is a {type(value).__name__}; accepted: {accepted}.")
        if value is not None and (value < 1 or (most is not None and value > most)):
            raise ValueError(f"load({arg}={value!r}) is out of range; accepted: {accepted}.")
    for arg, value in (("labels", labels), ("download", download)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"load({arg}={value!r}) is a {type(value).__name__}; accepted: True, False.")


def resize(x: torch.Tensor, size: int, pad_from: int | None = None) -> torch.Tensor:
    """MNIST-like 28x28 -> 32x32 by padding with background (-1); other sizes by interpolation."""
    if x.shape[-1] == size:
        return x
    if pad_from == x.shape[-1] and size > x.shape[-1] and (size - x.shape[-1]) % 2 == 0:
        p = (size - x.shape[-1]) // 2
        return F.pad(x, (p, p, p, p), value=-1.0)
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=size < x.shape[-1],
                         align_corners=False).clamp(-1, 1)


def _digits(split, root, download, labels=True):
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.images.astype(np.float32), d.target


def _idx_or_npz(what: str, sub: str, table: dict, sources, read):
    """The loader of a data set in two files (images, labels) described by ``table``."""
    def loader(split, root, download, labels=True):
        specs = [table[(split, kind)] for kind in ("images", "labels")[:1 + bool(labels)]]
        paths = [_find(spec, sub, root, download, sources) for spec in specs]
        missing = [spec.name for spec, path in zip(specs, paths) if path is None]
        if missing:
            raise DataUnavailable(_offline_message(what, missing, sub, root, sources))
        arrays = [_array(path, spec, read) for spec, path in zip(specs, paths)]
        return arrays[0], (arrays[1] if labels else None)
    return loader


def _olivetti(split, root, download, labels=True):
    path = _find(OLIVETTI, "olivetti", root, False, []) or (_fetch_olivetti() if download else None)
    if path is None:
        raise DataUnavailable(_offline_message("Olivetti faces", [OLIVETTI_FILE], "olivetti", root,
                                               OLIVETTI_SOURCE))
    return _array(path, OLIVETTI, _read_numpy).astype(np.float32), np.arange(400) // 10


def _fetch_olivetti() -> Path:
    """scikit-learn's download, rounded to uint8 and saved in the cache, then checksummed."""
    from sklearn.datasets import fetch_olivetti_faces
    try:
        faces = fetch_olivetti_faces(data_home=str(cache_dir() / "sklearn")).images
    except Exception as err:  # sklearn raises URLError/OSError offline
        raise DataUnavailable(_offline_message("Olivetti faces", [OLIVETTI_FILE], "olivetti", None,
                                               OLIVETTI_SOURCE) + f" (download failed: {err})") from None
    path = cache_dir() / "olivetti" / OLIVETTI_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.round(faces * 255).astype(np.uint8))
    return _verify(path, OLIVETTI, f"{OLIVETTI_SOURCE[0]} as uint8 is not the expected array ({{}}): "
                                   f"put a good {OLIVETTI_FILE} in DIR/olivetti/, set POSTERIOR_TUTOR_DATA=DIR.")


def _find(spec: FileSpec, sub, root, download, sources) -> Path | None:
    """The first local copy (checked), else a checked download into the cache; None if neither."""
    for path in _candidates(root, sub, spec.name):
        if path.is_file():
            return _verify(path, spec)
    path = cache_dir() / sub / spec.name
    for url in sources if download else ():
        if _download(url + spec.name, path.parent, spec.name):
            return _verify(path, spec, f"the download {url}{spec.name} is not the expected file ({{}}); "
                                       f"it was deleted. Try again later, or put a good copy in "
                                       f"DIR/{sub}/ and set POSTERIOR_TUTOR_DATA=DIR.")
    return None


def _verify(path: Path, spec: FileSpec, fresh: str | None = None) -> Path:
    """``path`` once its sha256 (md5 where no sha256 is known) matches ``spec``, else a
    DataUnavailable; a ``fresh`` download is deleted first, ``fresh`` is then the message."""
    algo, want = ("sha256", spec.sha256) if spec.sha256 else ("md5", spec.md5)
    got = hashlib.new(algo, path.read_bytes()).hexdigest()
    if got != want:
        problem = f"{algo} {got}, expected {want}"
        if fresh:
            path.unlink(missing_ok=True)
        raise DataUnavailable(fresh.format(problem) if fresh else _bad_file(path, problem))
    return path


def _bad_file(path: Path, problem: str) -> str:
    return (f"{path} is corrupt or not the expected file ({problem}). Delete it and load again to "
            f"download a fresh copy, or point POSTERIOR_TUTOR_DATA (or root=) at a folder with a good copy.")


def _array(path: Path, spec: FileSpec, read) -> np.ndarray:
    """``read(path)``, the uint8 array of ``spec``, else a DataUnavailable (never a BadZipFile)."""
    try:
        arr = read(path)
    except PARSE_ERRORS as err:
        raise DataUnavailable(_bad_file(path, f"unreadable: {type(err).__name__}: {err}")) from None
    if arr.dtype != np.uint8 or arr.shape != spec.shape:
        raise DataUnavailable(_bad_file(path, f"it holds a {arr.dtype} array of shape "
                                              f"{arr.shape}, expected uint8 {spec.shape}"))
    return arr


def _read_idx(path: Path) -> np.ndarray:
    """IDX (MNIST): magic 0, 0, 0x08 (uint8), ndim; ndim big-endian sizes; the data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError("no IDX header for uint8 data (it starts with 0x00 0x00 0x08)")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if len(raw) - 4 - 4 * ndim != int(np.prod(dims)):
        raise ValueError(f"the header says {dims} but {len(raw) - 4 - 4 * ndim} bytes follow")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _read_numpy(path: Path, key: str | None = None) -> np.ndarray:
    """A .npy file (``key=None``, Olivetti) or the array ``key`` of an .npz archive (KMNIST)."""
    obj = np.load(path, allow_pickle=False)
    if isinstance(obj, np.ndarray):
        if key is None:
            return obj
        raise ValueError("it is not an .npz file")
    with obj:  # an .npz archive
        if key is None or key not in obj.files:
            raise ValueError("it is not an .npy file" if key is None else
                             f"it holds the arrays {obj.files}, expected one named {key!r}")
        return obj[key]


def _candidates(root: Path | None, sub: str, fname: str) -> list[Path]:
    """Where a file may already be, in order: root/sub/fname, root/fname, the cache."""
    local = [root / sub / fname, root / fname] if root else []
    return local + [cache_dir() / sub / fname]


def _download(url: str, folder: Path, fname: str) -> bool:
    """torchvision's download_url (redirects); False when offline.  ``_find`` checks the checksum."""
    from torchvision.datasets.utils import download_url
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # a firewalled network fails fast, not in minutes
    try:
        download_url(url, str(folder), fname)
    except Exception:  # offline: URLError / OSError
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


_LOADERS = {"digits": _digits, "olivetti": _olivetti,
            "mnist": _idx_or_npz("MNIST", "mnist", MNIST_FILES, MNIST_MIRRORS, _read_idx),
            "kmnist": _idx_or_npz("KMNIST", "kmnist", KMNIST_FILES, [KMNIST_URL],
                                  lambda path: _read_numpy(path, "arr_0"))}
