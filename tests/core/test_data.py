"""Data loaders: shapes, ranges, checksums, offline messages (MNIST etc. from POSTERIOR_TUTOR_DATA)."""
import gzip
import shutil

import numpy as np
import pytest
import torch

from posterior_tutor import data


def _has(name):
    try:
        data.load(name, limit=1, download=False)
        return True
    except data.DataUnavailable:
        return False


needs_mnist = pytest.mark.skipif(not _has("mnist"), reason="MNIST test files not available offline "
                                 "(set POSTERIOR_TUTOR_DATA to a folder with mnist/t10k-*.gz)")


def test_digits_shape_range_and_native_size():
    x, y = data.load("digits", labels=True)
    assert x.shape == (1797, 1, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1 and x.max() == 1
    assert set(y.tolist()) == set(range(10))
    native = data.load("digits", size=8)
    assert native.shape == (1797, 1, 8, 8)
    # the 16x16 images are an interpolation of the 8x8 ones: pooling brings them back closely
    back = torch.nn.functional.avg_pool2d(data.load("digits"), 2)
    assert (back - native).abs().mean() < 0.15


@needs_mnist
def test_mnist_padded_to_32_with_background():
    x, y = data.load("mnist", split="test", labels=True)
    assert x.shape == (10000, 1, 32, 32) and y.shape == (10000,)
    assert y[:5].tolist() == [7, 2, 1, 0, 4]  # the published first test labels
    assert (x[:, :, :2] == -1).all() and (x[:, :, :, -2:] == -1).all()
    assert data.load("mnist", size=28, limit=3).shape == (3, 1, 28, 28)


@needs_mnist
def test_mnist_corrupt_file_is_reported(tmp_path, monkeypatch):
    root = data.local_root()
    (tmp_path / "mnist").mkdir()
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(root / "mnist" / f, tmp_path / "mnist" / f)
    with open(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", "ab") as fh:
        fh.write(b"junk")
    with pytest.raises(data.DataUnavailable, match="corrupt.*md5"):
        data.load("mnist", root=tmp_path, download=False, labels=True)
    # the images alone are fine: labels=False never opens the labels file
    assert data.load("mnist", root=tmp_path, download=False, limit=2).shape == (2, 1, 32, 32)


def test_offline_message_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POSTERIOR_TUTOR_DATA", raising=False)
    with pytest.raises(data.DataUnavailable, match=r"train-images-idx3-ubyte\.gz.*POSTERIOR_TUTOR_DATA"):
        data.load("mnist", split="train", download=False)
    with pytest.raises(data.DataUnavailable, match="olivetti"):
        data.load("olivetti", download=False)


def test_offline_message_names_every_missing_file_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POSTERIOR_TUTOR_DATA", raising=False)
    with pytest.raises(data.DataUnavailable) as err:
        data.load("mnist", split="test", labels=True, download=False)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg, msg
    assert "POSTERIOR_TUTOR_DATA=DIR" in msg and str(tmp_path / "cache" / "mnist") in msg, msg
    with pytest.raises(data.DataUnavailable) as err:           # images only: labels not asked for
        data.load("mnist", split="test", download=False)
    assert "labels" not in str(err.value), str(err.value)
    with pytest.raises(data.DataUnavailable) as err:
        data.load("kmnist", labels=True, download=False, root=tmp_path / "here")
    msg = str(err.value)
    assert "kmnist-test-imgs.npz, kmnist-test-labels.npz" in msg and "here/kmnist/" in msg, msg


def test_idx_reader_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + np.array(arr.shape, dtype=">i4").tobytes()
    with gzip.open(tmp_path / "a.gz", "wb") as fh:
        fh.write(header + arr.tobytes())
    assert np.array_equal(data._read_idx(tmp_path / "a.gz"), arr)


@pytest.mark.skipif(not _has("olivetti"), reason="Olivetti faces not available offline")
def test_olivetti_and_resize():
    x, y = data.load("olivetti", labels=True)
    assert x.shape == (400, 1, 64, 64) and y[-1] == 39
    small = data.load("olivetti", size=32)
    assert small.shape == (400, 1, 32, 32) and small.min() >= -1 and small.max() <= 1


@pytest.mark.skipif(not _has("kmnist"), reason="KMNIST not available offline")
def test_kmnist_out_of_distribution_set():
    x = data.load("kmnist", limit=10)
    assert x.shape == (10, 1, 32, 32)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*digits"):
        data.load("cifar")
    with pytest.raises(ValueError, match="split"):
        data.load("mnist", split="validation")
