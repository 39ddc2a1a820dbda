"""Progress bars on long work: off under pytest by default, on when asked, the right length."""
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.runtime import progress
from posterior_tutor.samplers import base
from conftest import seeded

SMALL = {"ddpm": dict(steps=7), "dps": dict(steps=6), "diffpir": dict(steps=5),
         "daps": dict(levels=4, ode_steps=2, langevin_steps=2), "pnp_ula": dict(steps=9),
         "latino": dict(steps=3), "spin": dict(steps=6, warm_start=2, t_star=300, guided=2)}


def test_bars_are_off_under_pytest_and_follow_the_argument_and_environment(monkeypatch):
    monkeypatch.delenv("POSTERIOR_TUTOR_PROGRESS", raising=False)
    assert progress.under_pytest() and not progress.wanted()
    assert progress.wanted(True) and not progress.wanted(False)
    monkeypatch.setenv("POSTERIOR_TUTOR_PROGRESS", "1")
    assert progress.wanted() and not progress.wanted(False)
    monkeypatch.setenv("POSTERIOR_TUTOR_PROGRESS", "off")
    assert not progress.wanted() and progress.wanted(True)
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        progress.wanted("yes")
    items = list(range(4))
    assert progress.bar(items, "quiet", progress=False) is items


def test_a_shown_bar_counts_every_step(capsys):
    out = list(progress.bar(range(5), "counting", total=5, progress=True, delay=0))
    assert out == list(range(5))
    err = capsys.readouterr().err
    assert "counting" in err and "5/5" in err, err


@pytest.mark.parametrize("name", sorted(SMALL))
def test_sample_bar_has_the_length_of_the_run(name, monkeypatch):
    tp = pt.toy.bimodal_problem_2d()
    den = tp.prior.denoiser(pt.VPSchedule())
    seen = {}

    def spy(iterable, desc, total=None, progress=None, **kw):
        seen.update(desc=desc, total=total, progress=progress)
        return iterable
    monkeypatch.setattr(base, "bar", spy)
    g = seeded(0)
    pt.sample(name, den, tp.problem, tp.y, n=3, generator=g, progress=True, **SMALL[name])
    steps = list(pt.iterate(name, den, tp.problem, tp.y, n=3, generator=g, **SMALL[name]))
    assert seen == {"desc": name, "total": len(steps), "progress": True}
