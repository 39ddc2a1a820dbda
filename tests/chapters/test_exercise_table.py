"""docs/exercises.md is the registry's table, regenerated (python scripts/exercise_table.py)."""
from pathlib import Path

from conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_exercise_table_is_up_to_date():
    want = load_script("exercise_table").table()
    got = (ROOT / "docs" / "exercises.md").read_text()
    assert got == want, "docs/exercises.md is stale: run python scripts/exercise_table.py"
