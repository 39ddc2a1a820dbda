"""Where the shipped files are: one lookup (``files.resources.root``) that every reader asks, the
checkout's folders in a checkout, the package's copy in an install, the folder variables first."""
from pathlib import Path

import pytest

import posterior_tutor as pt
from posterior_tutor.files import checkpoints, recipes, resources, stored

REPO = Path(__file__).resolve().parents[2]


def test_in_a_checkout_every_reader_finds_the_repositorys_folders(monkeypatch):
    monkeypatch.delenv("POSTERIOR_TUTOR_CHECKPOINTS", raising=False)
    monkeypatch.delenv("POSTERIOR_TUTOR_RUNS", raising=False)
    assert resources.CHECKOUT == REPO
    for tree, (folder, _, _) in resources.TREES.items():
        assert resources.root(tree) == REPO / folder, tree
    assert checkpoints.checkpoint_dir() == resources.root("data") == REPO / "data"
    assert stored.runs_dir() == REPO / "data" / "runs"
    assert recipes.recipe_dir() == REPO / "scripts" / "recipes"
    assert recipes.read_recipe("mnist_prior.json")["file"] == str(REPO / "scripts/recipes/mnist_prior.json")


def test_the_shipped_trees_list_what_the_chapters_and_loaders_read():
    chapters = {p.name for p in resources.files("chapters")}
    assert {p.name for p in (REPO / "notebooks").glob("[0-9]*.py")} <= chapters
    data = {str(p) for p in resources.files("data")}
    for row in pt.files.shipped.SHIPPED:
        assert f"{row.folder}/{row.filename}" in data and f"{row.folder}/model_card.json" in data
    assert {f"runs/{p.name}" for p in (REPO / "data" / "runs").glob("*.pt")} <= data
    assert {p.name for p in resources.files("recipes")} == \
        {p.name for p in (REPO / "scripts" / "recipes").glob("*.json")}
    assert "images.csv" in {str(p) for p in resources.files("benchmark")}


def test_an_installed_package_reads_its_own_copy(monkeypatch, tmp_path):
    """What an install does, without building one: the package's _data/ wins over the folder
    beside the package, and outside a checkout it is the answer even when missing."""
    inside = {"_data": tmp_path / "_data"}
    inside["_data"].mkdir()
    monkeypatch.setattr(resources, "_packaged", lambda name: inside.get(name, tmp_path / name))
    monkeypatch.delenv("POSTERIOR_TUTOR_CHECKPOINTS", raising=False)
    assert resources.root("data") == checkpoints.checkpoint_dir() == tmp_path / "_data"
    assert resources.root("chapters") == REPO / "notebooks"            # a checkout: beside it
    monkeypatch.setattr(resources, "_in_checkout", lambda: False)
    assert resources.root("chapters") == tmp_path / "_chapters"
    with pytest.raises(pt.files.safe.CheckpointError, match="the shipped mnist prior is missing "
                       r"\(.*_data/mnist_prior/prior.pt\).*pip install --force-reinstall"):
        pt.pretrained("mnist")


def test_the_folder_variables_still_win(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("POSTERIOR_TUTOR_RUNS", str(tmp_path / "runs"))
    assert checkpoints.checkpoint_dir() == tmp_path
    assert stored.runs_dir() == tmp_path / "runs"
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(tmp_path / "file"))
    with pytest.raises(FileExistsError, match="POSTERIOR_TUTOR_CHECKPOINTS=.* names a file, not a "
                       "folder"):
        checkpoints.checkpoint_dir()


def test_an_unknown_tree_is_refused_with_the_list():
    with pytest.raises(ValueError, match="unknown tree of shipped files 'weights'; use one of "
                       "data, chapters, recipes, benchmark"):
        resources.root("weights")
