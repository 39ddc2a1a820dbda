"""Training recipes as files: the settings that made a shipped checkpoint, in ``scripts/recipes/``.

A recipe is a JSON object with the command-line settings of one training run and a line saying
what it makes::

    {"what": "the shipped 4x SR UD2M sampler, stage 1 of 2",
     "command": "python scripts/train_ud2m_mnist.py",
     "args": {"task": "sr4", "steps": 900, "lr": 0.001, "K": 5, "N": 3, ...},
     "then": "ud2m_mnist_sr4_continue.json"}

``--recipe FILE`` on a training command (``python -m posterior_tutor.priors.train``,
``scripts/train_ud2m_mnist.py``, ``scripts/train_aps_mnist.py``) takes its settings from the file;
flags given on the command line override them, and the model card records the recipe with what
was overridden, so a card says which recipe made its weights.

Each value is checked before any work starts, against the schema the command's parser declares
(``schema(parser)``): a flag with ``type=positive_int`` takes a JSON whole number >= 1 (``2.5`` and
``true`` are refused: Python's bool is an int, a recipe's is not), ``type=boolean`` takes
``true``/``false``, every other flag a string that its ``type=`` accepts.  Unknown keys are
refused with the list of accepted ones.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .resources import root


def recipe_dir() -> Path:
    """Where the shipped checkpoints' recipes live: ``scripts/recipes/`` of the checkout, or the
    installed package's copy (``resources.root("recipes")``)."""
    return root("recipes")


class RecipeError(ValueError):
    """A recipe file that cannot be used (missing, not JSON, unknown settings)."""


def read_recipe(path) -> dict:
    """The recipe at ``path`` (or ``scripts/recipes/<path>``), checked: a JSON object with an
    ``args`` object of settings."""
    path, shipped = Path(path), recipe_dir()
    if not path.exists() and (shipped / path).exists():
        path = shipped / path
    try:
        recipe = json.loads(path.read_text())
    except FileNotFoundError:
        known = ", ".join(sorted(p.name for p in shipped.glob("*.json")))
        raise RecipeError(f"no recipe {path}; the shipped recipes are: {known}.") from None
    except (OSError, ValueError) as err:
        raise RecipeError(f"recipe {path} cannot be read as JSON ({err}).") from None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("args"), dict):
        raise RecipeError(f"recipe {path} must be a JSON object with an 'args' object of "
                          "settings (flag names without the leading --).")
    return {**recipe, "file": str(path)}


def parse_with_recipe(parser: argparse.ArgumentParser, argv=None):
    """Parse ``argv`` with ``parser``, taking defaults from ``--recipe FILE`` when given.

    Returns (args, record): ``record`` is None without a recipe, else what a model card keeps:
    the file, its settings, and the settings the command line overrode.  A recipe that cannot be
    used is a one-line ``prog: error: argument --recipe: ...`` with exit code 2 (``parser.error``),
    before any work starts."""
    if not any(a.dest == "recipe" for a in parser._actions):
        parser.add_argument("--recipe", default=None,
                            help="a JSON recipe (scripts/recipes/) whose settings are the "
                                 "defaults; flags given here override them")
    pre = argparse.ArgumentParser(prog=parser.prog, add_help=False)
    pre.add_argument("--recipe", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.recipe is None:
        return parser.parse_args(argv), None
    try:
        recipe = read_recipe(known.recipe)
        defaults = recipe_defaults(parser, recipe)
    except RecipeError as err:
        parser.error(f"argument --recipe: {err}")
    for dest in defaults:
        _actions(parser)[dest].required = False      # given by the recipe
    parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    overridden = {d: str(getattr(args, d)) for d, v in defaults.items()
                  if str(getattr(args, d)) != str(v)}
    return args, {"file": recipe["file"], "what": recipe.get("what", ""),
                  "args": recipe["args"], "overridden": overridden}


def _actions(parser) -> dict:
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "recipe")}


# ------------------------------------------------------------------------------------------------
# The schema: what JSON value each setting takes.  It is declared once, by the command's parser:
# a flag's ``type=`` (``posterior_tutor.runtime.cli``) says which JSON type its recipe value must
# have, and the same ``type=`` then checks the value as it checks the command line.
# ------------------------------------------------------------------------------------------------
KINDS = {"integer": "a JSON whole number (not true/false, not 2.5)",
         "number": "a JSON number (not true/false)",
         "boolean": "true or false",
         "string": "a JSON string"}


def _kind(action) -> str:
    from ..runtime import cli
    if action.nargs == 0:                      # store_true / store_false flags
        return "boolean"
    if action.type in (int, cli.positive_int, cli.nonnegative_int):
        return "integer"
    if action.type in (float, cli.positive_float, cli.nonnegative_float, cli.probability):
        return "number"
    if action.type is cli.boolean:
        return "boolean"
    return "string"                            # paths, devices, choices, START:STOP, lists


def schema(parser: argparse.ArgumentParser) -> dict:
    """{recipe key (the flag without --): JSON kind} that ``parser`` accepts in a recipe."""
    return {a.option_strings[-1].lstrip("-") if a.option_strings else a.dest: _kind(a)
            for a in _actions(parser).values()}


def _json_kind_ok(kind: str, value) -> bool:
    if isinstance(value, bool):                # bool is an int in Python: only "boolean" takes it
        return kind == "boolean"
    return {"integer": isinstance(value, int), "number": isinstance(value, (int, float)),
            "boolean": False, "string": isinstance(value, str)}[kind]


def recipe_defaults(parser: argparse.ArgumentParser, recipe: dict) -> dict:
    """The recipe's ``args`` checked against ``parser``'s schema and converted as argparse would
    convert the flags: {dest: value}.  Raises RecipeError naming the file, the key, the value and
    what is accepted (an unknown key lists the accepted ones)."""
    actions, where = _actions(parser), f"recipe {recipe['file']}"
    by_key = {k.replace("-", "_"): k for k in schema(parser)}
    out = {}
    for key, value in recipe["args"].items():
        dest = key.lstrip("-").replace("-", "_")
        if dest not in actions:
            raise RecipeError(f"{where} sets {key!r}, which {parser.prog} does not take; its "
                              f"settings: {', '.join(sorted(by_key.values()))}.")
        action, kind = actions[dest], _kind(actions[dest])
        shown = f"{where}: {key!r} is {json.dumps(value)}"
        if not _json_kind_ok(kind, value):
            raise RecipeError(f"{shown}; expected {KINDS[kind]}.")
        out[dest] = _typed(action, kind, value, shown)
    return out


def _typed(action, kind, value, shown):
    """``value`` through the flag's own ``type=`` and ``choices``, as the command line would be."""
    if kind == "boolean" and action.nargs == 0:
        return value if action.const is True else not value
    if action.type is not None:
        text = ("true" if value else "false") if kind == "boolean" else str(value)
        try:
            value = action.type(text)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
            raise RecipeError(f"{shown}; {err}.") from None
    if action.choices is not None and value not in action.choices:
        raise RecipeError(f"{shown}; expected one of {', '.join(map(str, action.choices))}.")
    return value


def recipe_line(card: dict) -> str:
    """A model card README's sentence about the recipe (empty when none was used)."""
    rec = card.get("recipe")
    if not rec:
        return ""
    over = ", ".join(f"{k}={v}" for k, v in rec.get("overridden", {}).items())
    return f"; recipe `{rec['file']}`" + (f" (overridden: {over})" if over else "")
