"""Training recipes as files: each shipped recipe parses on its command and says what the shipped
card's recorded command said; the command line overrides a recipe and the record says so."""
import json
import shlex
from pathlib import Path

import pytest

from posterior_tutor.files import recipes
from posterior_tutor.priors import train
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {  # recipe -> the card whose recorded command made (this stage of) the weights
    "digits_prior.json": "data/digits_prior", "mnist_prior.json": "data/mnist_prior",
    "ud2m_mnist_random_inpainting_continue.json": "data/ud2m_mnist_random_inpainting",
    "ud2m_mnist_sr4_continue.json": "data/ud2m_mnist_sr4",
    "aps_mnist_denoising.json": "data/aps_mnist_denoising",
    "aps_mnist_sr4_continue.json": "data/aps_mnist_sr4"}
PATHS = {"out", "init", "resume", "threads", "recipe"}   # where the files went, not how to train


def _parser(command):
    if command == "python -m posterior_tutor.priors.train":
        return train.build_parser
    mod = load_script(str(ROOT / command.split()[-1]))
    return lambda: _capture(mod.parse_args)


def _capture(parse_args):
    """The argparse parser that a script's parse_args builds (caught at parse time)."""
    import argparse
    seen = {}
    original = argparse.ArgumentParser.parse_args

    def grab(self, *a, **k):
        seen.setdefault("p", self)
        raise SystemExit(0)
    argparse.ArgumentParser.parse_args = grab
    try:
        parse_args([])
    except SystemExit:
        pass
    finally:
        argparse.ArgumentParser.parse_args = original
    return seen["p"]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "scripts/recipes").glob("*.json")))
def test_every_recipe_parses_on_its_command(name):
    rec = recipes.read_recipe(name)
    args, record = recipes.parse_with_recipe(_parser(rec["command"])(), ["--recipe", name])
    assert record["overridden"] == {} and record["what"]
    for key, value in rec["args"].items():
        got = getattr(args, key.replace("-", "_"))
        assert got == value or str(got) == str(value), key


@pytest.mark.parametrize("name, card_dir", sorted(SHIPPED.items()))
def test_recipes_say_what_the_shipped_cards_recorded(name, card_dir):
    rec = recipes.read_recipe(name)
    card = json.loads((ROOT / card_dir / "model_card.json").read_text())
    assert card["recipe"] == f"scripts/recipes/{name}"
    make = _parser(rec["command"])
    from_recipe = vars(recipes.parse_with_recipe(make(), ["--recipe", name])[0])
    tokens = shlex.split(card["command"])
    tokens = tokens[3:] if tokens[1] == "-m" else tokens[2:]
    if "--resume" in tokens:       # the APS card spells its resumed file in words
        i = tokens.index("--resume")
        tokens = tokens[:i] + tokens[i + 1:][tokens[i + 1:].index("--steps"):]
    from_card = vars(make().parse_args(tokens + (["--out", "x"] if "--out" not in tokens else [])))
    differ = {k: (from_recipe[k], from_card[k]) for k in from_card
              if k not in PATHS and str(from_recipe[k]) != str(from_card[k])}
    assert not differ, differ


def test_command_line_overrides_and_bad_recipes(tmp_path):
    args, record = recipes.parse_with_recipe(train.build_parser(),
                                             ["--recipe", "mnist_prior.json", "--steps", "10"])
    assert args.steps == 10 and args.lr == 0.0005 and record["overridden"] == {"steps": "10"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"args": {"no-such-flag": 1}}')
    with pytest.raises(recipes.RecipeError, match="no-such-flag"):
        recipes.parse_with_recipe(train.build_parser(), ["--recipe", str(bad)])
    bad.write_text("{not json")
    with pytest.raises(recipes.RecipeError, match="JSON"):
        recipes.read_recipe(bad)
    with pytest.raises(recipes.RecipeError, match="shipped recipes are"):
        recipes.read_recipe(tmp_path / "missing.json")
