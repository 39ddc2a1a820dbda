"""The package installed from a wheel works from any folder: the wheel carries the shipped files
(sha256 equal to the checkout's), and a fresh environment that holds the wheel but not the checkout
loads the shipped prior, UD2M sampler and APS flow and samples exactly what the checkout samples.

One wheel build and one install for the module (about 15 s on 2 cores): ``pip wheel --no-deps
--no-build-isolation`` of a copy of the checkout (so no build/ is left in it), installed with
``--no-deps`` into a throwaway venv.  The venv sees the running environment's packages (torch,
jupytext) through a .pth line, the way ``--system-site-packages`` would for a system Python; the
checkout is on no path there (PYTHONPATH is cleared and it runs from its own folder), which the
session checks through ``pt.__file__``."""
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from posterior_tutor.files import resources

REPO = Path(__file__).resolve().parents[2]
#: what a checkout holds that a build does not read (caches, environments, outputs)
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".ipynb_checkpoints", "*.ipynb", "_build",
                                     ".solved_notebooks", "bench_results", ".cache", "node_modules")


def _run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(the wheel, the venv's bin folder, a clean environment for it, a folder outside both)."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, tmp / "src", ignore=NOT_SOURCES)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "--disable-pip-version-check", "-w", str(tmp / "dist"), str(tmp / "src")])
    (wheel,) = (tmp / "dist").glob("posterior_tutor-*.whl")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(tmp / "venv")
    py = tmp / "venv" / "bin" / "python"
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(site.stdout.strip(), "_outer_environment.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
          "--ignore-installed", "-q", "--disable-pip-version-check", str(wheel)])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "POSTERIOR_TUTOR_CHECKPOINTS",
                                                        "POSTERIOR_TUTOR_RUNS")}
    (tmp / "elsewhere").mkdir()
    return wheel, py.parent, env, tmp / "elsewhere"


def test_the_wheel_carries_every_shipped_file_unchanged_and_stays_small(built):
    wheel = built[0]
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for tree, (_, inside, _) in resources.TREES.items():
            shipped = resources.files(tree)
            assert shipped, tree
            for rel in shipped:
                member = f"posterior_tutor/{inside}/{rel.as_posix()}"
                assert member in names, member
                assert hashlib.sha256(z.read(member)).hexdigest() == \
                    hashlib.sha256((resources.root(tree) / rel).read_bytes()).hexdigest(), member
        points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "posterior-tutor = posterior_tutor.__main__:main" in z.read(points).decode()
    assert wheel.stat().st_size < 30e6          # an index takes it (PyPI's limit is 100 MB)


def session() -> dict:
    """Run in the installed package (and here, in the checkout, for the reference): one thread,
    so that both sum in the same order (and a loaded 2-core machine is not oversubscribed)."""
    import itertools
    import torch
    import posterior_tutor as pt
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = [torch.Generator().manual_seed(s) for s in range(3)]
        den = pt.pretrained("mnist")
        ud = pt.ud2m.pretrained("mnist-sr4", den)
        y = ud.problem.measure(torch.zeros(1, 32, 32), generator=g[0])
        steps = list(itertools.islice(ud.iterate(y, 1, generator=g[1]), 2))
        fl = pt.aps.pretrained("mnist-sr4", den)
        xs = fl.sample(y, 2, generator=g[2])
        ud_x = ud.sample(y, 1, generator=g[1])                 # adds its calls to den's counters
        return {"ud2m": ud_x.double().sum().item(), "file": pt.__file__, "data": str(pt.files.resources.root("data")),
                "runs": str(pt.files.stored.runs_dir()), "nfe": den.nfe,
                "step": steps[-1].x.double().sum().item(), "aps": xs.double().sum().item(),
                "shape": list(xs.shape)}
    finally:
        torch.set_num_threads(threads)


def test_an_install_loads_and_samples_the_shipped_files_from_any_folder(built, monkeypatch):
    _, bin_dir, env, elsewhere = built
    code = inspect.getsource(session) + "\nimport json; print(json.dumps(session()))"
    out = json.loads(_run([str(bin_dir / "python"), "-c", code], cwd=elsewhere,
                          env=env).stdout.splitlines()[-1])
    installed = Path(out["file"]).resolve()
    assert bin_dir.parent in installed.parents and REPO not in installed.parents
    assert Path(out["data"]) == installed.parent / "_data"
    assert Path(out["runs"]) == installed.parent / "_data" / "runs"
    monkeypatch.delenv("POSTERIOR_TUTOR_CHECKPOINTS", raising=False)
    here = session()
    assert out["nfe"] == here["nfe"] == 15                     # the sampler's 5 x 3 prior calls
    for key in ("step", "ud2m", "aps"):
        assert out[key] == pytest.approx(here[key], rel=1e-6, abs=1e-6), key
    assert out["shape"] == [2, 1, 32, 32]


def test_the_console_script_writes_the_course_and_keeps_an_edit(built):
    _, bin_dir, env, elsewhere = built
    lab = [str(bin_dir / "posterior-tutor"), "lab", "--no-browser", "--dry-run"]
    first = _run(lab, cwd=elsewhere, env=env).stdout
    course = elsewhere / "posterior_tutor_course"
    chapters = sorted(p.name for p in (REPO / "notebooks").glob("[0-9]*.py"))
    for name in chapters:
        assert (course / name).read_bytes() == (REPO / "notebooks" / name).read_bytes()
    assert f"/lab/tree/{chapters[0].replace('.py', '.ipynb')}" in first
    with open(course / chapters[0], "a") as f:
        f.write("# my note\n")
    again = _run(lab, cwd=elsewhere, env=env).stdout
    assert f"kept 1 file you edited (not overwritten): {chapters[0]}" in again
