"""The properties table (evaluation/properties.py) and the method map (viz/method_map.py)."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import posterior_tutor as pt  # noqa: E402
from posterior_tutor.evaluation import properties  # noqa: E402
from posterior_tutor.samplers import base as registry  # noqa: E402
from posterior_tutor.viz.method_map import COLUMNS, column_of, method_map  # noqa: E402


@pytest.fixture(scope="module")
def rows():
    return properties.table()


def test_every_posterior_sampler_has_a_row_that_matches_the_registry(rows):
    names = [r["method"] for r in rows]
    assert set(names) == set(registry.methods()) - {"ddpm"} | {"ud2m", "aps"}
    for r in rows:
        if r["family"] == "zero-shot":
            assert r["backward"] == registry.get_method(r["method"]).backward_through_denoiser
        assert r["method"] in properties.PAYS, f"{r['method']} has no line in PAYS"


def test_values_are_read_from_the_stored_tables_not_guessed(rows):
    by = {r["method"]: r for r in rows}
    assert by["dps"]["backward"] and by["dps"]["nfe_2d"] == 1000
    assert by["latino"]["nfe_2d"] == 8 and by["latino"]["train_s"] == 0
    assert by["ud2m"]["train_s"] > 60 and by["ud2m"]["family"] == "trained per task"
    # SW / floor: positive; below 1 is possible (the floor is one exact pair's SW, and the stored
    # MCGdiff row reads 0.5 on the 2D problem), far below would be a misread column
    assert all(r["sw_floor_2d"] is None or r["sw_floor_2d"] > 0.2 for r in rows)
    assert by["mcgdiff"]["sw_floor_2d"] < by["dps"]["sw_floor_2d"]
    text = properties.markdown(rows)
    assert text.count("\n") == len(rows) + 1 and "| dps | zero-shot |" in text


def test_a_missing_stored_table_says_how_to_regenerate_it(monkeypatch, tmp_path):
    monkeypatch.setattr(properties, "stored_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m posterior_tutor bench"):
        properties.table()


def test_the_method_map_puts_each_method_in_one_column_and_draws(rows):
    assert column_of(next(r for r in rows if r["method"] == "dps")) == COLUMNS[0]
    assert column_of(next(r for r in rows if r["method"] == "ud2m")) == COLUMNS[2]
    fig = method_map(rows)
    assert len(fig.axes[0].texts) == len(rows)
    fig.canvas.draw()                                   # mathtext and layout render
    with pytest.raises(ValueError, match="at least one row"):
        method_map([])
