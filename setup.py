"""The one build step pyproject.toml cannot declare: the shipped files travel in the wheel.

The repository keeps ``data/``, ``notebooks/``, ``scripts/recipes/`` and ``docs/benchmark/``
where they are; this build_py copies them into the wheel as package data of posterior_tutor
(``posterior_tutor/_data/``, ``_chapters/``, ...), as listed in ``TREES`` of
``posterior_tutor/files/resources.py``, which finds them again at run time.

Why not ``[tool.setuptools.package-dir]`` entries mapping ``posterior_tutor._data`` to ``data``:
with any mapping besides ``"" = "."`` setuptools turns the editable install of
``scripts/setup.sh`` from a plain path entry into an import hook (``editable_wheel``'s
``_select_strategy`` keeps the static .pth only for ``package-dir = {"" = ...}``), the hook that
a folder named posterior_tutor in the working directory shadows (see pyproject.toml).  The editable
install copies nothing (``editable_mode``): a checkout reads the repository's folders.
"""
import glob
import importlib.util
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def shipped_trees() -> dict:
    """``TREES`` of posterior_tutor/files/resources.py (loaded by path: it imports only stdlib)."""
    path = os.path.join(HERE, "posterior_tutor", "files", "resources.py")
    spec = importlib.util.spec_from_file_location("_posterior_tutor_resources", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TREES


class BuildWithShippedFiles(build_py):
    """build_py plus one package-data entry per shipped tree (setuptools copies, records and
    lists them as it does any package data)."""

    def _get_data_files(self):
        files = super()._get_data_files()
        if self.editable_mode:
            return files
        for folder, inside, patterns in shipped_trees().values():
            src = os.path.join(HERE, *folder.split("/"))
            names = sorted({os.path.relpath(p, src) for pattern in patterns
                            for p in glob.glob(os.path.join(src, pattern), recursive=True)
                            if os.path.isfile(p)})
            if not names:
                raise SystemExit(f"error: {folder}/ has no files matching {', '.join(patterns)}; "
                                 "build posterior_tutor from a full checkout or its sdist.")
            files.append((f"posterior_tutor.{inside}", src,
                          os.path.join(self.build_lib, "posterior_tutor", inside), names))
        return files


setup(cmdclass={"build_py": BuildWithShippedFiles})
