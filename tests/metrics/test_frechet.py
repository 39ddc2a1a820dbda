"""Tests for posterior_tutor.metrics.frechet (the Frechet distance, loading the shipped digit
classifiers, their checkpoints, the input checks), evaluation/classifier.py (the network, its
accuracy, the splits) and scripts/train_classifier.py (the command).  MNIST tests need the MNIST test split locally
(POSTERIOR_TUTOR_DATA or the cache); they are skipped without it."""
import json
import shutil

import numpy as np
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor import data
from posterior_tutor.evaluation import classifier as cl
from posterior_tutor.metrics import frechet as fr
from posterior_tutor.files.checkpoints import CheckpointError
from posterior_tutor.files.shipped import names
from conftest import load_script, seeded as gen

torch.set_num_threads(1)


def random_cov(d, seed):
    a = torch.randn(d, d, generator=gen(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def fd_reference(mu1, s1, mu2, s2):
    """Closed form via symmetric square roots: Tr((S1^1/2 S2 S1^1/2)^1/2) = Tr((S1 S2)^1/2)."""
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2)
                 - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


@pytest.fixture(scope="module")
def digits_clf():
    return pt.pretrained("digits", "classifier")


@pytest.fixture(scope="module")
def digits_split():
    return cl.split_images("digits")


@pytest.fixture(scope="module")
def mnist_split():
    try:
        x, y = data.load("mnist", split="test", labels=True, download=False)
    except data.DataUnavailable as err:
        pytest.skip(f"MNIST test split not available offline (set POSTERIOR_TUTOR_DATA): {err}")
    return x, y


# --------------------------------------------------------------------------- the distance
def test_gaussian_closed_form_matches_symmetric_formula():
    s1, s2 = random_cov(5, 1).numpy(), random_cov(5, 2).numpy()
    mu1, mu2 = np.arange(5.0), np.ones(5)
    expected = fd_reference(mu1, s1, mu2, s2)
    assert fr.frechet_distance_gaussian(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    assert fr.frechet_distance_gaussian(np.zeros(2), np.diag(a), np.zeros(2), np.diag(b)) \
        == pytest.approx(((np.sqrt(a) - np.sqrt(b)) ** 2).sum(), rel=1e-10)


def test_samples_from_known_gaussians_approximate_closed_form():
    d, n = 4, 40_000
    s1, s2 = random_cov(d, 3), random_cov(d, 4)
    mu1, mu2 = torch.zeros(d, dtype=torch.float64), torch.full((d,), 0.5, dtype=torch.float64)
    a = mu1 + torch.randn(n, d, generator=gen(5), dtype=torch.float64) @ torch.linalg.cholesky(s1).T
    b = mu2 + torch.randn(n, d, generator=gen(6), dtype=torch.float64) @ torch.linalg.cholesky(s2).T
    expected = fd_reference(mu1.numpy(), s1.numpy(), mu2.numpy(), s2.numpy())
    assert fr.frechet_distance(a, b) == pytest.approx(expected, rel=0.05, abs=0.01)


def test_zero_on_identical_sets_and_symmetric():
    a = torch.randn(300, 16, generator=gen(7))
    b = torch.randn(300, 16, generator=gen(8)) * 1.3 + 0.2
    assert fr.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fr.frechet_distance(a, b) == pytest.approx(fr.frechet_distance(b, a), rel=1e-8)


def test_mean_shift_adds_its_squared_norm():
    a = torch.randn(500, 8, generator=gen(9), dtype=torch.float64)
    values = []
    for c in (0.0, 0.5, 1.0, 2.0):
        shift = torch.full((8,), c, dtype=torch.float64)
        values.append(fr.frechet_distance(a, a + shift))
        assert values[-1] == pytest.approx(8 * c ** 2, abs=1e-6)
    assert values == sorted(values)


def test_distance_input_errors():
    with pytest.raises(ValueError, match="same d"):
        fr.frechet_distance(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ValueError, match="at least 2"):
        fr.frechet_distance(torch.randn(1, 3), torch.randn(10, 3))
    with pytest.raises(ValueError, match="NaN"):
        fr.frechet_distance(torch.full((10, 3), float("nan")), torch.randn(10, 3))


# --------------------------------------------------------------------------- shipped classifiers
def test_digits_classifier_accuracy_and_card(digits_clf, digits_split):
    _, _, xho, yho = digits_split
    acc = cl.accuracy(digits_clf, xho, yho)
    card = digits_clf.card
    assert card["data"] == "digits" and card["train_subset"] == "0:1500"
    assert acc >= 0.95 and acc >= card["heldout_accuracy"] - 0.005
    assert fr.checkpoint_dir().joinpath("classifiers", "digits", "classifier.pt").stat().st_size \
        < 2_000_000


def test_mnist_classifier_accuracy(mnist_split):
    x, y = mnist_split
    clf = pt.pretrained("mnist", "classifier")
    acc = cl.accuracy(clf, x[8000:], y[8000:])
    assert clf.card["train_subset"] == "0:8000" and clf.card["heldout_subset"] == "8000:10000"
    assert acc >= 0.97 and acc >= clf.card["heldout_accuracy"] - 0.005
    assert fr.checkpoint_dir().joinpath("classifiers", "mnist", "classifier.pt").stat().st_size \
        < 2_000_000


def test_digits_floor_below_noise_and_matches_card(digits_clf):
    x = data.load("digits")
    floor = fr.real_floor(x[0:297], x[1500:1797], digits_clf)
    noise = fr.digit_frechet(cl.noise_images(297, 16), x[1500:1797], digits_clf)
    assert fr.digit_frechet(x[1500:1797], x[1500:1797], digits_clf) == pytest.approx(0, abs=1e-6)
    assert 0 < floor < noise / 10
    recorded = digits_clf.card["floors"]
    assert floor == pytest.approx(recorded["train[0:297] vs heldout[1500:1797]"]["fd"], rel=1e-3)
    assert noise == pytest.approx(recorded["noise vs heldout[1500:1797]"]["fd"], rel=1e-3)


def test_mnist_floor_below_noise_and_grows_with_corruption(mnist_split):
    x, _ = mnist_split
    clf = pt.pretrained("mnist", "classifier")
    floor = fr.real_floor(x[8000:9000], x[9000:10000], clf)
    recorded = clf.card["floors"]["heldout[8000:9000] vs heldout[9000:10000]"]["fd"]
    assert floor == pytest.approx(recorded, rel=1e-3)
    noise = fr.digit_frechet(cl.noise_images(1000, 32), x[9000:10000], clf)
    assert floor < noise / 10
    g = gen(11)
    corrupted = [fr.digit_frechet((x[8000:9000] + s * torch.randn(1000, 1, 32, 32, generator=g))
                                  .clamp(-1, 1), x[9000:10000], clf) for s in (0.2, 0.5)]
    assert floor < corrupted[0] < corrupted[1]


# --------------------------------------------------------------------------- checkpoints
@pytest.fixture
def digits_copy(tmp_path):
    src = fr.checkpoint_dir() / "classifiers" / "digits"
    dst = tmp_path / "classifiers" / "digits"
    shutil.copytree(src, dst)
    return dst


def test_copy_loads_and_gives_the_same_features(digits_copy, digits_clf):
    x = data.load("digits")[:50]
    clf = fr.load_classifier(digits_copy / "classifier.pt")
    torch.testing.assert_close(fr.embed(x, clf), fr.embed(x, digits_clf), rtol=0, atol=0)


def test_truncated_checkpoint_raises(digits_copy):
    path = digits_copy / "classifier.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        fr.load_classifier(path)
    with pytest.raises(CheckpointError, match="truncated"):
        fr.load_classifier(path, check=False)


def test_sha_mismatch_and_missing_card_raise(digits_copy, monkeypatch):
    card_path = digits_copy / "model_card.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(CheckpointError, match="checksum mismatch.*restore it"):
        fr.load_classifier(digits_copy / "classifier.pt")
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(digits_copy.parent.parent))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        pt.pretrained("digits", "classifier")
    card_path.unlink()
    with pytest.raises(CheckpointError, match="model_card.json is missing"):
        pt.pretrained("digits", "classifier")
    with pytest.raises(CheckpointError, match="mnist classifier is missing"):
        pt.pretrained("mnist", "classifier")
    with pytest.raises(ValueError, match="unknown pretrained classifier 'cifar'; shipped: digits, mnist"):
        pt.pretrained("cifar", "classifier")
    with pytest.raises(ValueError, match="unknown pretrained classifier 'cifar'"):
        fr.classifier_path("cifar")


# --------------------------------------------------------------------------- input checks
def test_wrong_image_size_raises(digits_clf):
    x16 = data.load("digits")[:100]
    x32 = torch.nn.functional.interpolate(x16, size=32)
    with pytest.raises(ValueError, match="32x32 but the classifier takes 16x16"):
        fr.digit_frechet(x32, x16, digits_clf)
    with pytest.raises(ValueError, match=r"\(n, 1, H, W\)"):
        fr.digit_frechet(x16[:, 0], x16, digits_clf)


def test_nan_and_out_of_range_raise(digits_clf):
    x = data.load("digits")[:100]
    bad = x.clone()
    bad[3, 0, 4, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fr.digit_frechet(bad, x, digits_clf)
    with pytest.raises(ValueError, match=r"scaled to \[-1, 1\]"):
        fr.digit_frechet(x, (x + 1) * 127.5, digits_clf)
    # a slightly unclipped sampler output is accepted (and clipped)
    assert fr.digit_frechet(x * 1.05, x, digits_clf) == pytest.approx(
        fr.digit_frechet((x * 1.05).clamp(-1, 1), x, digits_clf))


# --------------------------------------------------------------------------- the command
@pytest.mark.parametrize("flags,named", [
    (["--data", "cifar"], "--data"),
    (["--steps", "0"], "--steps"),
    (["--lr", "-1"], "--lr"),
    (["--seed", "1.5"], "--seed"),
    (["--floors-only"], "--floors-only"),
])
def test_command_refuses_bad_flags_in_one_line(flags, named, tmp_path, capsys):
    script = load_script("train_classifier")
    with pytest.raises(SystemExit) as info:
        script.main(["--out", str(tmp_path / "clf"), *flags])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python scripts/train_classifier.py: error: argument " + named)
    assert not (tmp_path / "clf").exists()


def test_command_trains_writes_a_loadable_card_and_is_reproducible(tmp_path, capsys):
    script = load_script("train_classifier")
    for run in ("a", "b"):
        script.main(["--data", "digits", "--steps", "3", "--batch", "16", "--out",
                     str(tmp_path / run)])
    assert "held-out accuracy" in capsys.readouterr().out
    card = json.loads((tmp_path / "a" / "model_card.json").read_text())
    assert card["command"] == (f"python scripts/train_classifier.py --data digits --steps 3 "
                               f"--batch 16 --out {tmp_path / 'a'}")
    assert card["steps"] == 3 and set(card["floors"]) == set(cl.SPLITS["digits"]["floors"]) | {
        "noise vs heldout[1500:1797]"}
    a, b = (fr.load_classifier(tmp_path / run / "classifier.pt") for run in ("a", "b"))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)


def test_floors_only_reproduces_the_shipped_floors(digits_copy, capsys):
    sha = fr.file_sha256(digits_copy / "classifier.pt")
    recorded = json.loads((digits_copy / "model_card.json").read_text())["floors"]
    load_script("train_classifier").main(["--data", "digits", "--out", str(digits_copy),
                                          "--floors-only"])
    got = json.loads(capsys.readouterr().out)
    assert set(got) == set(recorded)
    for label, row in recorded.items():
        assert got[label]["fd"] == pytest.approx(row["fd"], rel=1e-3), label
    assert fr.file_sha256(digits_copy / "classifier.pt") == sha
    assert fr.load_classifier(digits_copy / "classifier.pt").card["floors"] == got


def test_shipped_cards_name_the_command_that_exists():
    script = load_script("train_classifier")
    for name in names("classifier"):
        card = json.loads(fr.classifier_path(name).with_name("model_card.json").read_text())
        assert card["command"] == (f"python scripts/train_classifier.py --data {name} "
                                   f"--out data/classifiers/{name}")
        assert script.parse_args(card["command"].split()[2:]).data == name


def test_split_images_names_an_unknown_data_set():
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*digits, mnist"):
        cl.split_images("cifar")
