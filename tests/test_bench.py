"""The benchmark runs end to end in fast mode and reports consistent numbers."""
import torch

from posterior_tutor import bench


def test_toy_suite_fast(tmp_path):
    rows = bench.run_toy_suite(fast=True, n=200, method_names=["diffpir", "dps"], progress=False)
    by = {(r.problem, r.method): r for r in rows}
    for problem in ("2d-bimodal", "gmm-d16-rank4"):
        floor = by[(problem, "exact (noise floor)")]
        prior = by[(problem, "prior samples")]
        assert floor.sw < prior.sw
        dif = by[(problem, "diffpir")]
        assert dif.nfe == 100 and dif.backward == 0
        assert by[(problem, "dps")].backward == by[(problem, "dps")].nfe == 200
        assert dif.overhead >= 1.0
    assert by[("2d-bimodal", "dps")].sw_over_prior < 0.5   # measured 0.13 (n=200)
    bench.write(rows, tmp_path)
    text = (tmp_path / "toy.md").read_text()
    assert "| 2d-bimodal | diffpir |" in text and "Machine:" in text
    assert (tmp_path / "toy.csv").read_text().count("\n") == len(rows) + 1


def test_cli_rejects_unknown_method(capsys):
    import pytest
    with pytest.raises(SystemExit):
        bench.main(["--methods", "nope"])
    assert "unknown method" in capsys.readouterr().err
