"""``posterior-tutor COMMAND [FLAGS]`` (= ``python -m posterior_tutor``): the package's commands.

    posterior-tutor lab [DIR]                     # the chapters into DIR, JupyterLab on the first
    posterior-tutor book                          # the chapters as a static HTML book
    posterior-tutor bench --fast                  # every method side by side (evaluation/bench.py)
    posterior-tutor train --data digits           # train a diffusion prior (priors/train.py)
    posterior-tutor model-card CHECKPOINT         # evaluate a prior, write its card
    posterior-tutor COMMAND --help                # the flags of one command

Each command checks its flags before any work starts: a bad one is a one-line error naming the
flag, the value and what is accepted, with exit code 2.  A command's module is imported only when
that command runs, so one whose module is not installed says so in one line (exit code 1).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

#: command -> (module whose ``main(argv)`` runs it, what it does)
COMMANDS = {
    "lab": ("posterior_tutor.runtime.lab", "write the chapters into a folder and open JupyterLab"),
    "book": ("posterior_tutor.runtime.book", "build the chapters into a static HTML book"),
    "bench": ("posterior_tutor.evaluation.bench", "run the benchmark (toy and image suites)"),
    "train": ("posterior_tutor.priors.train_cli", "train a diffusion prior by denoising score matching"),
    "model-card": ("posterior_tutor.evaluation.model_card", "evaluate a prior and write its card"),
}

#: what a command is, in the one line that says its module is not installed
CALLED = {"book": "the book builder", "lab": "the lab command"}


def prog() -> str:
    """How the entry point was called: ``posterior-tutor`` (the console script) or
    ``python -m posterior_tutor``."""
    name = os.path.basename(sys.argv[0] if sys.argv else "")
    return "posterior-tutor" if name.startswith("posterior-tutor") else "python -m posterior_tutor"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    return (f"usage: {prog()} COMMAND [FLAGS]   (COMMAND --help for its flags)\n"
            "commands:\n" + "\n".join(lines))


def installed(module: str) -> bool:
    """True when ``module`` (a command's) can be imported here."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:               # a parent package is missing
        return False


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest, me = argv[0], argv[1:], prog()
    if name not in COMMANDS:
        print(usage(), file=sys.stderr)
        print(f"{me}: error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    module_name = COMMANDS[name][0]
    if not installed(module_name):
        print(f"{me} {name}: error: {CALLED.get(name, f'the {name} command')} is not installed "
              f"here ({module_name} is missing); install a posterior_tutor that has it.",
              file=sys.stderr)
        return 1
    module = importlib.import_module(module_name)
    argv0, sys.argv = sys.argv, [f"{me} {name}", *rest]
    try:
        code = module.main(rest)
    finally:
        sys.argv = argv0
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
