"""The trained-sampler family's shape (posterior_tutor/trained): small files, short functions, each
method file opening with its equations and departures, one public entry point per method (pt.ud2m
and pt.aps are the packages), NFE counted on the prior's counters, imports that run one way
(trained -> samplers, never back) and a benchmark with no per-method case for trained samplers."""
import ast
from pathlib import Path

import pytest
import torch

import posterior_tutor as pt
import posterior_tutor.trained.ud2m as ud2m
from conftest import seeded

TRAINED = Path(pt.__file__).parent / "trained"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 320, 80


def _files():
    files = sorted(TRAINED.rglob("*.py"))
    assert len(files) >= 19, files   # base, shipped, the ud2m package (9 files), aps (7 files)
    return files


def test_no_file_over_320_lines():
    long = {f.relative_to(TRAINED).as_posix(): n for f in _files()
            if (n := len(f.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, long


def test_no_function_over_80_lines():
    long = {}
    for f in _files():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{f.relative_to(TRAINED).as_posix()}:{node.name}"] = n
    assert not long, long


def test_every_file_opens_with_a_docstring():
    missing = [f.name for f in _files() if not ast.get_docstring(ast.parse(f.read_text()))]
    assert not missing, missing


#: method files with no equations of their own (option kinds and input checks)
NO_EQUATIONS = {"checks.py", "run_state.py"}   # input checks; what a resumable run saves


@pytest.mark.parametrize("method", ["ud2m", "aps"])
def test_every_method_file_opens_with_equations_and_departures(method):
    """Each role file's docstring shows the equations it implements (a displayed ``=``) and says
    where it departs from the paper; the package's own docstring cites the paper (arXiv)."""
    folder = TRAINED / method
    files = {f.name: ast.get_docstring(ast.parse(f.read_text())) for f in folder.glob("*.py")}
    assert "arXiv" in files["__init__.py"]
    bare = [name for name, doc in files.items() if name not in NO_EQUATIONS and not
            (" = " in doc and "eparture" in doc)]
    assert not bare, bare


def test_aps_is_split_by_role():
    names = {f.name for f in (TRAINED / "aps").glob("*.py")}
    assert {"elbo.py", "flows.py", "sampler.py", "train.py"} <= names, names


def _imports(path: Path) -> set:
    """The posterior_tutor modules a file imports, as dotted names relative to the package."""
    pkg = path.relative_to(TRAINED.parent).with_suffix("").parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(pkg[:len(pkg) - node.level + 1]) if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out |= {mod} | {f"{mod}.{a.name}".lstrip(".") for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name.removeprefix("posterior_tutor.") for a in node.names}
    return out


def test_imports_run_one_way_from_trained_to_samplers():
    """samplers/ (the zero-shot family and the protocol) imports nothing of the trained family,
    nor of its compatibility modules; the trained family may use samplers/."""
    trained = ("trained", "amortized", "unfolding", "ud2m_presets")
    back = {f.name: sorted(m for m in _imports(f) if m.split(".")[0] in trained)
            for f in (TRAINED.parent / "samplers").glob("*.py")}
    assert not {k: v for k, v in back.items() if v}, back
    assert any(m.startswith("samplers") for f in TRAINED.rglob("*.py") for m in _imports(f))


def test_the_benchmark_has_no_per_method_case_for_trained_samplers():
    """The image suite gets trained samplers through pt.pretrained(name, kind) and the
    shipped table; it names no trained method and imports no method's package."""
    evaluation = TRAINED.parent / "evaluation"
    for f in ("runners.py", "image_suite.py", "options.py"):
        tree = ast.parse((evaluation / f).read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                   and isinstance(n.value, str)}
        assert not {"TRAINED", "_counted_on"} & names, f
        assert not {"ud2m", "aps"} & strings, f
        mods = _imports(evaluation / f)
        assert not [m for m in mods if m.split(".")[0] in ("amortized", "unfolding")
                    or m.startswith(("trained.ud2m", "trained.aps"))], (f, mods)
    for f in ("bench.py", "toy_suite.py"):
        assert "_counted_on" not in (evaluation / f).read_text(), f


def test_pt_aps_is_the_trained_package_and_amortized_re_exports_it():
    from posterior_tutor.trained import aps as amortized
    import posterior_tutor.trained.aps as aps
    assert pt.aps is aps and amortized.APSSampler is aps.APSSampler
    assert amortized.train is aps.train and amortized.pretrained is aps.pretrained
    assert issubclass(aps.APSSampler, pt.trained.base.TrainedSampler)
    assert set(amortized.__all__) == set(aps.__all__)


def test_an_aps_sample_is_the_last_step_and_adds_no_network_calls():
    den = pt.pretrained("mnist")
    fl = pt.aps.pretrained("mnist-sr4", den)
    y = fl.problem.measure(torch.zeros(1, 32, 32), generator=seeded(0))
    den.reset_counters()
    xs = fl.sample(y, 2, generator=seeded(1))
    assert den.nfe == 0 and den.nfe_grad == 0      # a flow pass calls no diffusion network
    *_, last = fl.iterate(y, 2, generator=seeded(1))
    assert torch.equal(last.x, xs)


def test_pt_ud2m_is_the_trained_package_and_the_old_modules_re_export_it():
    from posterior_tutor.trained.ud2m import presets as ud2m_presets
    from posterior_tutor.trained import ud2m as unfolding
    assert pt.ud2m is ud2m
    assert pt.ud2m.train is ud2m.train and pt.ud2m.pretrained is ud2m.pretrained
    assert unfolding.UD2MSampler is ud2m.UD2MSampler and unfolding.train is ud2m.train
    assert ud2m_presets.sigma_primes is ud2m.presets.sigma_primes
    assert issubclass(ud2m.UD2MSampler, pt.trained.base.TrainedSampler)


def test_sample_counts_its_calls_on_the_priors_counters():
    """The adapted network counts its calls; sample adds them to the prior's (what the benchmark
    reads), so a trained sampler needs no special case there."""
    den = pt.pretrained("mnist")
    ud = pt.ud2m.pretrained("mnist-sr4", den)
    y = ud.problem.measure(torch.zeros(1, 32, 32), generator=seeded(0))
    den.reset_counters()
    ud.sample(y, 1, generator=seeded(1))
    assert den.nfe == ud.nfe_per_sample == ud.K * ud.N and den.nfe_grad == 0
    from posterior_tutor.evaluation.runners import trained_runners
    den.reset_counters()
    (run,) = trained_runners("ud2m", "sr4", den).values()
    xs = run(ud.problem, y, 2, seeded(1))
    assert xs.shape == (2, 1, 32, 32) and den.nfe == ud.K * ud.N


def test_pretrained_by_kind_is_the_methods_own():
    """One lookup, pt.pretrained(name, kind), over one table; pt.ud2m / pt.aps.pretrained are it
    with the kind fixed, and each kind's names are views of that table."""
    from posterior_tutor.files import shipped
    den = pt.pretrained("mnist")
    assert shipped.names("ud2m") == tuple(pt.ud2m.SHIPPED) == ("mnist-random-inpainting",
                                                               "mnist-sr4")
    assert {n: shipped.entry("aps", n).folder for n in shipped.names("aps")} == pt.aps.PRETRAINED
    ud = pt.pretrained("mnist-sr4", "ud2m", den=den)
    assert isinstance(ud, pt.ud2m.UD2MSampler) and ud.den is den and ud.card["task"] == "sr4"
    flow = pt.pretrained("mnist-sr4", kind="aps", den=den)
    assert type(flow) is pt.aps.APSSampler and flow.den is den
    clf = pt.pretrained("digits", kind="classifier")
    assert type(clf).__name__ == "DigitClassifier" and clf.card["sha256"]
    with pytest.raises(ValueError, match="unknown kind 'vae' of shipped file; use one of prior"):
        pt.pretrained("mnist-sr4", "vae", den=den)
    with pytest.raises(ValueError, match="unknown pretrained UD2M sampler 'mnist-denoising'; "
                                         "shipped: mnist-random-inpainting, mnist-sr4"):
        pt.pretrained("mnist-denoising", "ud2m", den=den)
    with pytest.raises(ValueError, match="den= is for a trained sampler"):
        pt.pretrained("mnist", den=den)
    with pytest.raises(ValueError, match="pass den= or device=, not both"):
        pt.aps.pretrained("mnist-sr4", den, device="cpu")
    with pytest.raises(ValueError, match="check must be True or False, got 'no'"):
        pt.ud2m.pretrained("mnist-sr4", den, check="no")


def test_one_table_of_shipped_files_and_every_row_is_on_disk():
    """Every shipped file is one row (kind, name unique), its file and model card exist under
    data/, its trained samplers name a shipped prior and a task; no other module keeps its own
    list of names."""
    import re
    from posterior_tutor.files import shipped
    from posterior_tutor.files.checkpoints import checkpoint_dir
    rows = shipped.SHIPPED
    assert len({(r.kind, r.name) for r in rows}) == len(rows)
    assert {r.kind for r in rows} == set(shipped.KINDS)
    for r in rows:
        assert (checkpoint_dir() / r.folder / r.filename).is_file(), r
        assert (checkpoint_dir() / r.folder / "model_card.json").is_file(), r
        if r.kind in pt.trained.KINDS:
            assert r.prior in shipped.names("prior") and r.task and r.sigma > 0, r
    tuples = re.compile(r"^\w*(SHIPPED|PRETRAINED)\w* = [(\[{]\s*\"", re.M)
    owners = [f.relative_to(TRAINED.parent).as_posix() for f in TRAINED.parent.rglob("*.py")
              if tuples.search(f.read_text())]
    assert owners == [], owners          # files/shipped.py itself holds Shipped(...) rows
    from posterior_tutor.metrics import frechet
    assert not hasattr(frechet, "SHIPPED") and not hasattr(frechet, "classifier")
    for name in shipped.names("classifier"):
        row = shipped.entry("classifier", name)
        assert frechet.classifier_path(name) == checkpoint_dir() / row.folder / row.filename


def test_a_missing_card_names_the_argument_that_loads_unverified(tmp_path, monkeypatch):
    import shutil
    from posterior_tutor.files.checkpoints import CheckpointError, checkpoint_dir
    den = pt.pretrained("mnist")
    shutil.copytree(checkpoint_dir() / "ud2m_mnist_sr4", tmp_path / "ud2m_mnist_sr4")
    (tmp_path / "ud2m_mnist_sr4" / "model_card.json").unlink()
    monkeypatch.setenv("POSTERIOR_TUTOR_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match="cannot be verified; pass check=False"):
        pt.ud2m.pretrained("mnist-sr4", den)
    with pytest.warns(UserWarning, match="carries no checksum"):   # the shipped file predates it
        ud = pt.ud2m.pretrained("mnist-sr4", den, check=False)
    assert ud.card == {} and ud.nfe_per_sample > 0


def test_a_checkpoint_of_another_kind_is_refused_before_anything_is_built():
    den = pt.pretrained("mnist")
    aps_like = {"format": "posterior_tutor.aps/1", "config": {}, "adapter": {}, "log_lambda": 0}
    with pytest.raises(pt.files.checkpoints.CheckpointError,
                       match="f.pt is not a UD2M sampler checkpoint .*'posterior_tutor.aps/1'"):
        pt.ud2m.UD2MSampler.from_checkpoint(aps_like, den, path="f.pt")
    no_adapter = {"format": pt.ud2m.FORMAT, "config": {}, "log_lambda": 0}
    with pytest.raises(pt.files.checkpoints.CheckpointError, match="not a UD2M sampler checkpoint"):
        pt.ud2m.UD2MSampler.from_checkpoint(no_adapter, den, path="f.pt")
