"""The hint ladder: each call of ``pt.exercises.hint(id)`` climbs one rung.

    1. a conceptual nudge (what to think about; no formula);
    2. a concrete hint: the one for the mistake your last wrong answer matched, if the checker
       recognised it, else the exercise's general hint;
    3. the formula (or, for a prediction, the reasoning that gives the number);
    then: where the full solution is (``pt.exercises.solution(id)``), never the code itself.

``hint(id, level=k)`` shows rung k directly; ``hint(id, level=1)`` also starts the climb again.
The ladder's position is kept per exercise for the session (a kernel restart resets it).
"""
from __future__ import annotations

from .base import LAST_MISTAKE

LEVELS = ("nudge", "hint", "formula", "solution")

#: exercise id -> the rung shown last (0: none yet)
_CLIMBED: dict[str, int] = {}


def rung(ex, level: int) -> str:
    """The text of rung ``level`` (1-4) of exercise ``ex``."""
    if level == 1:
        return ex.nudge or ex.hint or "think about what each symbol means before writing code."
    if level == 2:
        return LAST_MISTAKE.get(ex.id) or ex.hint or ex.nudge
    if level == 3:
        return ex.formula or ex.hint
    return (f'the worked cell after the check shows it; the reference solution is '
            f'pt.exercises.solution("{ex.id}") (try the ladder first: it teaches more).')


def next_hint(ex, level: int | None = None) -> str:
    """The next rung for ``ex`` (or rung ``level``), as the line ``hint()`` prints."""
    if level is None:
        level = min(_CLIMBED.get(ex.id, 0) + 1, len(LEVELS))
    else:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= len(LEVELS):
            raise ValueError(f"level must be an integer from 1 to {len(LEVELS)} "
                             f"({', '.join(LEVELS)}); got {level!r}.")
    _CLIMBED[ex.id] = level
    more = " Call again for the next hint." if level < len(LEVELS) else ""
    return f"Exercise {ex.id}, hint {level}/{len(LEVELS)} ({LEVELS[level - 1]}): " \
           f"{rung(ex, level)}{more}"
