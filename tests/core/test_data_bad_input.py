"""pt.data.load refuses bad arguments and bad files with clear errors (never a raw BadZipFile,
KeyError or torch traceback, never a silent fallback such as size=0 -> the default).

Corrupt files are built in tmp_path from the offline copies in POSTERIOR_TUTOR_DATA; nothing is
downloaded (``_download`` is replaced wherever a loader could reach the network)."""
import gzip
import hashlib
import shutil

import numpy as np
import pytest

from posterior_tutor import data

SHARED = data.local_root()
KM_IMGS, KM_LABELS = data.KMNIST_FILES[("test", "images")], data.KMNIST_FILES[("test", "labels")]
MN_IMGS, MN_LABELS = data.MNIST_FILES[("test", "images")], data.MNIST_FILES[("test", "labels")]


def _shared(sub, fname):
    path = SHARED / sub / fname if SHARED else None
    if path is None or not path.is_file():
        pytest.skip(f"{sub}/{fname} not available offline (set POSTERIOR_TUTOR_DATA)")
    return path


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """An empty cache in tmp_path, and a network that is never reached unless a test says so."""
    monkeypatch.setenv("POSTERIOR_TUTOR_CACHE", str(tmp_path / "cache"))

    def no_download(url, folder, fname):
        raise AssertionError(f"the test tried to download {url}")
    monkeypatch.setattr(data, "_download", no_download)


# -- arguments -------------------------------------------------------------------------------------
BAD_ARGUMENTS = [  # (keyword arguments, exception, what the message must say)
    (dict(name="mnist", size=0), ValueError, r"size=0\) is out of range; accepted: an int from 1 to 112"),
    (dict(name="digits", size=-3), ValueError, r"size=-3\) is out of range.*1 to 32"),
    (dict(name="digits", size="16"), TypeError, r"size='16'\) is a str; accepted: an int"),
    (dict(name="digits", size=True), TypeError, r"size=True\) is a bool"),
    (dict(name="digits", size=16.0), TypeError, r"size=16\.0\) is a float"),
    (dict(name="mnist", size=113), ValueError, r"size=113\).*1 to 112 \(4x the native 28x28.*no detail"),
    (dict(name="olivetti", size=1024), ValueError, r"size=1024\).*1 to 256"),
    (dict(name="digits", limit=-1), ValueError, r"limit=-1\) is out of range; accepted: an int >= 1"),
    (dict(name="digits", limit=0), ValueError, r"limit=0\) is out of range"),
    (dict(name="digits", limit=False), TypeError, r"limit=False\) is a bool"),
    (dict(name="digits", limit="5"), TypeError, r"limit='5'\) is a str"),
    (dict(name="digits", limit=1798), ValueError, r"limit=1798\).*only 1797 images.*1 to 1797"),
    (dict(name="cifar"), ValueError, r"name='cifar'\): unknown data set 'cifar'; accepted: digits, mnist, olivetti, kmnist"),
    (dict(name=None), ValueError, r"name=None\).*accepted: digits"),
    (dict(name="MNIST"), ValueError, r"unknown data set 'MNIST'"),
    (dict(name="mnist", split="validation"), ValueError, r"split='validation'\).*accepted: 'train', 'test'\."),
    (dict(name="kmnist", split="train"), ValueError, r"split='train'\): not a split of kmnist; accepted: 'test'\."),
    (dict(name="digits", split="val"), ValueError, r"split='val'\).*'all', 'train', 'test' \(one set"),
    (dict(name="mnist", split=None), ValueError, r"split=None\)"),
    (dict(name="digits", root=3), ValueError, r"root=3\) is not a folder path"),
    (dict(name="digits", root=""), ValueError, r"root=''\) is not a folder path"),
    (dict(name="digits", labels="yes"), TypeError, r"labels='yes'\) is a str; accepted: True, False"),
    (dict(name="digits", download=1), TypeError, r"download=1\) is a int; accepted: True, False"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_ARGUMENTS,
                         ids=[f"{k}" for k, _, _ in BAD_ARGUMENTS])
def test_bad_argument_is_refused_before_any_file_is_read(kwargs, error, message, tmp_path):
    if "limit" not in kwargs or kwargs["limit"] != 1798:   # all but "more than the set has"
        kwargs = {"root": tmp_path / "empty", "download": False, **kwargs}  # no file anywhere
    with pytest.raises(error, match=message):
        data.load(**kwargs)


def test_root_that_is_a_file_and_env_folder_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"root=.*f'\) is not a folder path"):
        data.load("digits", root=str(tmp_path / "f"))
    monkeypatch.setenv("POSTERIOR_TUTOR_DATA", str(tmp_path / "f"))
    with pytest.raises(FileExistsError, match="POSTERIOR_TUTOR_DATA=.*names a file"):
        data.load("mnist", download=False)


def test_good_edges_are_accepted():
    assert data.load("digits", size=1, limit=2).shape == (2, 1, 1, 1)
    assert data.load("digits", size=np.int64(32), limit=np.int64(3)).shape == (3, 1, 32, 32)
    x, y = data.load("digits", limit=1797, labels=True, split="all")
    assert x.shape[0] == y.shape[0] == 1797


# -- corrupt files ---------------------------------------------------------------------------------
def _copy(sub, fname, root):
    (root / sub).mkdir(parents=True, exist_ok=True)
    return shutil.copy(_shared(sub, fname), root / sub / fname)


def _truncate(path):
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[: len(raw) // 2])


def _trust(monkeypatch, table, key, path):
    """Make the checksum of ``table[key]`` that of the file at ``path``, so that the checks
    after the checksum (parsing, array name, shape, dtype) are the ones that must catch it."""
    raw = open(path, "rb").read()
    spec = table[key]
    spec = spec._replace(md5=hashlib.md5(raw).hexdigest(), sha256=spec.sha256 and hashlib.sha256(raw).hexdigest())
    monkeypatch.setitem(table, key, spec)


def _npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


ADVICE = r"Delete it and load again.*or point POSTERIOR_TUTOR_DATA \(or root=\) at a folder"


def _kmnist_cases(path):
    """name -> (how to corrupt the file at path, message after the checksum is trusted)."""
    good = np.load(_shared("kmnist", KM_IMGS.name))["arr_0"]
    return {
        "truncated": (lambda: _truncate(path), r"unreadable: BadZipFile"),
        "wrong array name": (lambda: _npz(path, images=good), r"holds the arrays \['images'\], expected one named 'arr_0'"),
        "wrong shape": (lambda: _npz(path, arr_0=good[:5000]), r"shape \(5000, 28, 28\), expected uint8 \(10000, 28, 28\)"),
        "wrong dtype": (lambda: _npz(path, arr_0=good.astype(np.float32)), r"float32 array of shape \(10000, 28, 28\)"),
        "an npy file": (lambda: np.save(open(path, "wb"), good), r"not an \.npz file"),
        "a text file": (lambda: path.write_text("404 not found"), r"unreadable: ValueError"),
    }


@pytest.mark.parametrize("case", ["truncated", "wrong array name", "wrong shape", "wrong dtype",
                                  "an npy file", "a text file"])
def test_corrupt_kmnist_file(case, tmp_path, monkeypatch):
    path = _copy("kmnist", KM_IMGS.name, tmp_path)
    corrupt, after_checksum = _kmnist_cases(path)[case]
    corrupt()
    with pytest.raises(data.DataUnavailable, match=rf"kmnist-test-imgs\.npz is corrupt.*\(sha256 [0-9a-f]{{64}}, "
                                                   rf"expected {KM_IMGS.sha256}\)\. {ADVICE}"):
        data.load("kmnist", root=tmp_path, download=False)
    _trust(monkeypatch, data.KMNIST_FILES, ("test", "images"), path)
    with pytest.raises(data.DataUnavailable, match=rf"kmnist-test-imgs\.npz is corrupt.*{after_checksum}.*{ADVICE}"):
        data.load("kmnist", root=tmp_path, download=False)


def test_kmnist_labels_are_checked_too(tmp_path, monkeypatch):
    _copy("kmnist", KM_IMGS.name, tmp_path)
    path = tmp_path / "kmnist" / KM_LABELS.name
    _npz(path, arr_0=np.zeros(9999, np.uint8))
    assert data.load("kmnist", root=tmp_path, download=False, limit=2).shape == (2, 1, 32, 32)
    with pytest.raises(data.DataUnavailable, match=r"kmnist-test-labels\.npz is corrupt.*sha256"):
        data.load("kmnist", root=tmp_path, download=False, labels=True)
    _trust(monkeypatch, data.KMNIST_FILES, ("test", "labels"), path)
    with pytest.raises(data.DataUnavailable, match=r"labels\.npz.*shape \(9999,\), expected uint8 \(10000,\)"):
        data.load("kmnist", root=tmp_path, download=False, labels=True)


def _idx(path, arr, magic=b"\x00\x00\x08", extra=b""):
    header = magic + bytes([arr.ndim]) + np.array(arr.shape, dtype=">i4").tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.tobytes() + extra)


MNIST_CASES = {  # name -> (corrupt the file at path, message once its checksum is trusted)
    "truncated gzip": (_truncate, r"unreadable: EOFError"),
    "not gzip": (lambda p: p.write_bytes(b"<html>moved</html>"), r"unreadable: BadGzipFile"),
    "wrong magic": (lambda p: _idx(p, np.zeros((10000, 28, 28), np.uint8), magic=b"\x00\x00\x0d"),
                    r"no IDX header for uint8 data"),
    "length mismatch": (lambda p: _idx(p, np.zeros((10000, 28, 28), np.uint8), extra=b"xx"),
                        r"the header says \(10000, 28, 28\) but 7840002 bytes follow"),
    "wrong shape": (lambda p: _idx(p, np.zeros((10, 28, 28), np.uint8)),
                    r"shape \(10, 28, 28\), expected uint8 \(10000, 28, 28\)"),
}


@pytest.mark.parametrize("case", list(MNIST_CASES))
def test_corrupt_mnist_file(case, tmp_path, monkeypatch):
    path = _copy("mnist", MN_IMGS.name, tmp_path)
    corrupt, after_checksum = MNIST_CASES[case]
    corrupt(path)
    with pytest.raises(data.DataUnavailable, match=rf"t10k-images-idx3-ubyte\.gz is corrupt.*md5 .*"
                                                   rf"expected {MN_IMGS.md5}.*{ADVICE}"):
        data.load("mnist", root=tmp_path, download=False)
    _trust(monkeypatch, data.MNIST_FILES, ("test", "images"), path)
    with pytest.raises(data.DataUnavailable, match=rf"t10k-images-idx3-ubyte\.gz is corrupt.*{after_checksum}"):
        data.load("mnist", root=tmp_path, download=False)


OLIVETTI_CASES = {
    "truncated": (_truncate, r"unreadable: ValueError"),
    "wrong shape": (lambda p: np.save(p, np.zeros((400, 32, 32), np.uint8)),
                    r"shape \(400, 32, 32\), expected uint8 \(400, 64, 64\)"),
    "wrong dtype": (lambda p: np.save(p, np.zeros((400, 64, 64), np.float32)), r"holds a float32 array"),
    "an npz file": (lambda p: _npz(p, arr_0=np.zeros((400, 64, 64), np.uint8)), r"not an \.npy file"),
}


@pytest.mark.parametrize("case", list(OLIVETTI_CASES))
def test_corrupt_olivetti_file(case, tmp_path, monkeypatch):
    path = _copy("olivetti", data.OLIVETTI_FILE, tmp_path)
    corrupt, after_checksum = OLIVETTI_CASES[case]
    corrupt(path)
    with pytest.raises(data.DataUnavailable, match=rf"olivetti_faces_uint8_400x64x64\.npy is corrupt.*"
                                                   rf"sha256 .*expected {data.OLIVETTI.sha256}.*{ADVICE}"):
        data.load("olivetti", root=tmp_path, download=False)
    raw = open(path, "rb").read()
    monkeypatch.setattr(data, "OLIVETTI", data.OLIVETTI._replace(sha256=hashlib.sha256(raw).hexdigest()))
    with pytest.raises(data.DataUnavailable, match=rf"400x64x64\.npy is corrupt.*{after_checksum}"):
        data.load("olivetti", root=tmp_path, download=False)


def test_corrupt_file_in_the_cache_is_named(tmp_path):
    path = _copy("kmnist", KM_IMGS.name, tmp_path / "cache")
    _truncate(path)
    with pytest.raises(data.DataUnavailable, match=rf"{tmp_path / 'cache' / 'kmnist'}.*is corrupt.*Delete it"):
        data.load("kmnist", root=tmp_path / "nothing-here", download=False)


# -- downloads -------------------------------------------------------------------------------------
def _fake_download(monkeypatch, corrupt):
    """A _download that 'downloads' the offline copy (corrupted if asked) into the cache."""
    calls = []

    def download(url, folder, fname):
        calls.append(url)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(_shared("kmnist", fname), folder / fname)
        if corrupt:
            _truncate(folder / fname)
        return True
    monkeypatch.setattr(data, "_download", download)
    return calls


def test_download_with_a_wrong_checksum_is_refused_and_deleted(tmp_path, monkeypatch):
    calls = _fake_download(monkeypatch, corrupt=True)
    with pytest.raises(data.DataUnavailable, match=r"the download http.*kmnist-test-imgs\.npz is not "
                                                   r"the expected file \(sha256 .*it was deleted"):
        data.load("kmnist", root=tmp_path / "nothing-here")
    assert calls == [data.KMNIST_URL + KM_IMGS.name]
    assert not (tmp_path / "cache" / "kmnist" / KM_IMGS.name).exists()


def test_good_download_is_checked_and_kept(tmp_path, monkeypatch):
    calls = _fake_download(monkeypatch, corrupt=False)
    x, y = data.load("kmnist", root=tmp_path / "nothing-here", labels=True, limit=4)
    assert x.shape == (4, 1, 32, 32) and y.shape == (4,) and len(calls) == 2
    assert (tmp_path / "cache" / "kmnist" / KM_LABELS.name).is_file()


def test_olivetti_download_is_checksummed(tmp_path, monkeypatch):
    import sklearn.datasets
    good = np.load(_shared("olivetti", data.OLIVETTI_FILE)).astype(np.float32) / 255

    class Faces:
        images = good
    monkeypatch.setattr(sklearn.datasets, "fetch_olivetti_faces", lambda data_home: Faces)
    x = data.load("olivetti", root=tmp_path / "nothing-here", limit=2)
    assert x.shape == (2, 1, 64, 64)
    (tmp_path / "cache" / "olivetti" / data.OLIVETTI_FILE).unlink()
    Faces.images = good[::-1].copy()   # the same faces in another order: another array
    with pytest.raises(data.DataUnavailable, match=r"fetch_olivetti_faces\(\) as uint8 is not the "
                                                   r"expected array \(sha256 .*POSTERIOR_TUTOR_DATA=DIR"):
        data.load("olivetti", root=tmp_path / "nothing-here")
    assert not (tmp_path / "cache" / "olivetti" / data.OLIVETTI_FILE).exists()
