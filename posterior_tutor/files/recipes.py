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
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..runtime.config import REPO_ROOT

#: where the shipped checkpoints' recipes live
RECIPE_DIR = REPO_ROOT / "scripts" / "recipes"


class RecipeError(ValueError):
    """A recipe file that cannot be used (missing, not JSON, unknown settings)."""


def read_recipe(path) -> dict:
    """The recipe at ``path`` (or ``scripts/recipes/<path>``), checked: a JSON object with an
    ``args`` object of settings."""
    path = Path(path)
    if not path.exists() and (RECIPE_DIR / path).exists():
        path = RECIPE_DIR / path
    try:
        recipe = json.loads(path.read_text())
    except FileNotFoundError:
        known = ", ".join(sorted(p.name for p in RECIPE_DIR.glob("*.json")))
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
    the file, its settings, and the settings the command line overrode."""
    if not any(a.dest == "recipe" for a in parser._actions):
        parser.add_argument("--recipe", default=None,
                            help="a JSON recipe (scripts/recipes/) whose settings are the "
                                 "defaults; flags given here override them")
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.recipe is None:
        return parser.parse_args(argv), None
    recipe = read_recipe(known.recipe)
    actions = {a.dest: a for a in parser._actions}
    defaults = {}
    for key, value in recipe["args"].items():
        dest = key.lstrip("-").replace("-", "_")
        if dest not in actions or dest == "recipe":
            raise RecipeError(f"recipe {recipe['file']} sets {key!r}, which {parser.prog} does not "
                              f"take; its settings: {', '.join(sorted(set(actions) - {'help'}))}.")
        defaults[dest] = _converted(actions[dest], value)
        actions[dest].required = False      # given by the recipe
    parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    overridden = {d: str(getattr(args, d)) for d, v in defaults.items()
                  if str(getattr(args, d)) != str(v)}
    return args, {"file": recipe["file"], "what": recipe.get("what", ""),
                  "args": recipe["args"], "overridden": overridden}


def _converted(action, value):
    """``value`` as argparse stores a flag's value: its ``type`` applied (40 -> 40.0 for a float
    flag, "runs/x" -> Path for a path flag); a value the type refuses is kept as it is."""
    if action.type is not None and not isinstance(value, bool):
        try:
            return action.type(value)
        except (TypeError, ValueError):
            return value
    return value


def recipe_line(card: dict) -> str:
    """A model card README's sentence about the recipe (empty when none was used)."""
    rec = card.get("recipe")
    if not rec:
        return ""
    over = ", ".join(f"{k}={v}" for k, v in rec.get("overridden", {}).items())
    return f"; recipe `{rec['file']}`" + (f" (overridden: {over})" if over else "")
