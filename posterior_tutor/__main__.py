"""``python -m posterior_tutor COMMAND [FLAGS]``: one entry point for the package's commands.

    python -m posterior_tutor bench --fast              # every method side by side (evaluation/bench.py)
    python -m posterior_tutor train --data digits       # train a diffusion prior (priors/train.py)
    python -m posterior_tutor model-card CHECKPOINT     # evaluate a prior, write its card
    python -m posterior_tutor COMMAND --help            # the flags of one command

Each command checks its flags before any work starts: a bad one is a one-line error naming the
flag, the value and what is accepted, with exit code 2.
"""
from __future__ import annotations

import importlib
import sys

#: command -> (module whose ``main(argv)`` runs it, what it does)
COMMANDS = {
    "bench": ("posterior_tutor.evaluation.bench", "run the benchmark (toy and image suites)"),
    "train": ("posterior_tutor.priors.train_cli", "train a diffusion prior by denoising score matching"),
    "model-card": ("posterior_tutor.evaluation.model_card", "evaluate a prior and write its card"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    return ("usage: python -m posterior_tutor COMMAND [FLAGS]   (COMMAND --help for its flags)\n"
            "commands:\n" + "\n".join(lines))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(usage(), file=sys.stderr)
        print(f"python -m posterior_tutor: error: unknown command {name!r}; choose one of "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    sys.argv = [f"python -m posterior_tutor {name}", *rest]
    module.main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
