"""Write the chapters with their exercises solved, as notebooks for nbval.

    python scripts/solved_notebooks.py OUTDIR [notebooks/03_langevin_latino.py ...]
    POSTERIOR_TUTOR_FAST=1 python -m pytest -q -p no:cacheprovider --nbval-lax OUTDIR

Every cell tagged ``exercise`` becomes ``name = pt.exercises.solution("<id>")``, so each check
cell after it must print "pass".  Without source arguments, every chapter in notebooks/.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from posterior_tutor.exercises.notebook import write_solved  # noqa: E402


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    sources = argv[1:] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    for name, ids in write_solved(sources, argv[0]).items():
        print(f"{name}: solved {', '.join(ids) if ids else 'no exercises'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
