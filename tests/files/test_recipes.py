"""Training recipes as files: each shipped recipe parses on its command and says what the shipped
card's recorded command said; the command line overrides a recipe and the record says so."""
import json
import shlex
from pathlib import Path

import pytest

from posterior_tutor.files import recipes
from posterior_tutor.priors import train, train_cli
from conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {  # recipe -> the card whose recorded command made (this stage of) the weights
    "digits_prior.json": "data/digits_prior", "mnist_prior.json": "data/mnist_prior",
    "ud2m_mnist_random_inpainting_continue.json": "data/ud2m_mnist_random_inpainting",
    "ud2m_mnist_sr4_continue.json": "data/ud2m_mnist_sr4",
    "aps_mnist_denoising.json": "data/aps_mnist_denoising",
    "aps_mnist_sr4_continue.json": "data/aps_mnist_sr4"}
PATHS = {"out", "init", "resume", "threads", "recipe"}   # where the files went, not how to train


def _parser(command):
    if command == "python -m posterior_tutor.priors.train":
        return train_cli.build_parser
    return load_script(str(ROOT / command.split()[-1])).build_parser


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


def test_command_line_overrides_a_recipe():
    args, record = recipes.parse_with_recipe(train_cli.build_parser(),
                                             ["--recipe", "mnist_prior.json", "--steps", "10"])
    assert args.steps == 10 and args.lr == 0.0005 and record["overridden"] == {"steps": "10"}


def test_unreadable_recipes(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(recipes.RecipeError, match="JSON"):
        recipes.read_recipe(bad)
    with pytest.raises(recipes.RecipeError, match="shipped recipes are"):
        recipes.read_recipe(tmp_path / "missing.json")
    bad.write_text('{"args": [1, 2]}')
    with pytest.raises(recipes.RecipeError, match="'args' object"):
        recipes.read_recipe(bad)


def _recipe(tmp_path, args):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"what": "a test", "args": args}))
    return recipes.read_recipe(path)


def _ud2m_parser():
    return _parser("python scripts/train_ud2m_mnist.py")()


def _aps_parser():
    return _parser("python scripts/train_aps_mnist.py")()


BAD = [  # (parser, key, value, words the error must contain)
    (train_cli.build_parser, "steps", 2.5, "whole number"),      # trained 2 steps, card said 2.5
    (train_cli.build_parser, "steps", True, "whole number"),     # trained 1 step (bool is an int)
    (train_cli.build_parser, "steps", 0, ">= 1"),
    (train_cli.build_parser, "steps", "100", "whole number"),
    (train_cli.build_parser, "batch", -4, ">= 1"),
    (train_cli.build_parser, "ckpt-every", 0, ">= 1"),
    (train_cli.build_parser, "attention", 1, "true or false"),   # was an AttributeError
    (train_cli.build_parser, "attention", "banana", "true or false"),
    (train_cli.build_parser, "lr", "fast", "JSON number"),
    (train_cli.build_parser, "lr", False, "JSON number"),
    (train_cli.build_parser, "ema", 1.5, "[0, 1]"),
    (train_cli.build_parser, "subset", "5:5", "START:STOP"),
    (train_cli.build_parser, "subset", 8000, "JSON string"),
    (train_cli.build_parser, "channels", "8,x", "comma-separated"),
    (train_cli.build_parser, "data", "cifar", "not one of"),
    (train_cli.build_parser, "threads", -1, ">= 1"),
    (train_cli.build_parser, "no-progress", "yes", "true or false"),
    (_ud2m_parser, "task", "colourise", "expected one of"),
    (_ud2m_parser, "K", 2.0, "whole number"),
    (_ud2m_parser, "adv-weight", -1, ">= 0"),
    (_aps_parser, "minutes", 0, "> 0"),
    (_aps_parser, "save-every", True, "whole number"),
]


@pytest.mark.parametrize("make, key, value, words", BAD,
                         ids=[f"{m.__name__}-{k}-{v!r}" for m, k, v, _ in BAD])
def test_bad_recipe_values_name_file_key_value_and_type(tmp_path, make, key, value, words):
    rec = _recipe(tmp_path, {key: value})
    with pytest.raises(recipes.RecipeError) as err:
        recipes.recipe_defaults(make(), rec)
    msg = str(err.value)
    assert rec["file"] in msg and repr(key) in msg and json.dumps(value) in msg and words in msg


def test_recipe_values_are_typed_as_the_flags_are(tmp_path):
    rec = _recipe(tmp_path, {"steps": 3, "lr": 1, "attention": False, "subset": ":100",
                             "channels": "8,16", "no-progress": True})
    got = recipes.recipe_defaults(train_cli.build_parser(), rec)
    assert got == {"steps": 3, "lr": 1.0, "attention": False, "subset": ":100",
                   "channels": (8, 16), "no_progress": True}
    assert isinstance(got["lr"], float) and isinstance(got["steps"], int)


def test_unknown_recipe_key_lists_the_accepted_ones(tmp_path):
    rec = _recipe(tmp_path, {"no-such-flag": 1})
    with pytest.raises(recipes.RecipeError, match="'no-such-flag'.*its settings: .*ckpt-every"):
        recipes.recipe_defaults(train_cli.build_parser(), rec)


def test_schema_is_declared_by_each_command(tmp_path):
    s = recipes.schema(train_cli.build_parser())
    assert (s["steps"], s["attention"], s["lr"], s["subset"], s["no-progress"]) == (
        "integer", "boolean", "number", "string", "boolean")
    assert recipes.schema(_ud2m_parser())["K"] == "integer"
    assert recipes.schema(_aps_parser())["minutes"] == "number"


def test_a_bad_recipe_is_one_line_and_exit_code_2(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text('{"args": {"steps": 2.5}}')
    with pytest.raises(SystemExit) as stop:
        recipes.parse_with_recipe(train_cli.build_parser(), ["--recipe", str(path)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert "argument --recipe" in err and str(path) in err and "'steps' is 2.5" in err
