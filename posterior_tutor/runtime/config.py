"""Run-time settings read from the environment: every variable the package reads, parsed here.

| variable                        | accepted values                          | bad value          |
|---------------------------------|------------------------------------------|--------------------|
| ``POSTERIOR_TUTOR_FAST``        | 1/0, true/false, yes/no, on/off, unset   | ValueError         |
| ``POSTERIOR_TUTOR_PROGRESS``    | 1/0, true/false, yes/no, on/off, unset   | warning, automatic |
| ``POSTERIOR_TUTOR_DEVICE``      | cpu, cuda, cuda:N, mps (present here)    | ValueError         |
| ``POSTERIOR_TUTOR_RUNS``        | a folder (stored runs, ``files.stored``) | FileExistsError    |
| ``POSTERIOR_TUTOR_CHECKPOINTS`` | a folder of shipped checkpoints          | FileExistsError    |
| ``POSTERIOR_TUTOR_DATA``        | a folder of offline data (``data``)      | (checked on load)  |
| ``POSTERIOR_TUTOR_CACHE``       | the download cache folder (``data``)     | (checked on load)  |
| ``CI``                          | set by CI services; true/1/yes = fast    | ignored            |

Why an error for FAST but only a warning for PROGRESS: fast mode changes *what is computed*
(steps, sizes, sample counts), so guessing on ``POSTERIOR_TUTOR_FAST=banana`` would either run
for hours or print fast-mode numbers as if they were the full ones; progress bars change only
what is *shown*, so a typo there should not stop a long run -- it warns (naming the accepted
values) and the bars follow the automatic rule.  ``CI`` belongs to the CI service (GitHub sets
``true``, others set names), so an unknown value there means "not fast", silently.

Where the shipped files are when neither folder variable is set (a checkout's ``data/`` or the
installed package's copy) is decided in one place, ``files.resources.root``.

"Once": each variable is parsed by one function here, cached on its raw text, so a value is
checked (and warned about) once per session, yet a variable changed in a running kernel
(``os.environ[...] = ...``, monkeypatch in tests) is read again.
"""
from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
ACCEPTED_FLAGS = "1/0, true/false, yes/no, on/off (or unset)"


def env(name: str) -> str:
    """The raw text of environment variable ``name``, stripped ('' when unset)."""
    return os.environ.get(name, "").strip()


@functools.lru_cache(maxsize=None)
def parse_flag(name: str, raw: str, strict: bool = True) -> bool | None:
    """``raw`` (the text of variable ``name``) as True/False, None when empty.  A value outside
    1/0/true/false/yes/no/on/off is a ValueError (``strict``) or a warning and None."""
    text = raw.strip().lower()
    if text == "":
        return None
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    message = f"{name}={raw!r} is not a yes/no value; accepted: {ACCEPTED_FLAGS}."
    if strict:
        raise ValueError(message)
    warnings.warn(message + " Ignoring it (the automatic choice is used).", stacklevel=4)
    return None


def flag(name: str, strict: bool = True) -> bool | None:
    """Environment variable ``name`` as a yes/no flag (see :func:`parse_flag`)."""
    return parse_flag(name, env(name), strict)


def fast_mode() -> bool:
    """True when POSTERIOR_TUTOR_FAST is a true value (or, unset, when CI=true): notebooks and the
    benchmark shrink steps and sizes (every code path still runs and the claims are asserted)."""
    fast = flag("POSTERIOR_TUTOR_FAST")
    if fast is not None:
        return fast
    return env("CI").lower() in TRUE


def progress_setting() -> bool | None:
    """POSTERIOR_TUTOR_PROGRESS as True/False, or None (unset or unrecognised: automatic)."""
    return flag("POSTERIOR_TUTOR_PROGRESS", strict=False)


def folder_setting(name: str) -> Path | None:
    """Environment variable ``name`` as a folder path (None when unset).  A path that exists
    and is not a folder is a FileExistsError naming the variable (a missing one is created by
    whoever writes there)."""
    raw = env(name)
    if not raw:
        return None
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{name}={raw!r} names a file, not a folder; point it at a folder "
                              f"(it is created if missing) or unset it.")
    return path


def default_device():
    """The device a chapter or script runs on: ``POSTERIOR_TUTOR_DEVICE`` when set (``cpu``,
    ``cuda``, ``cuda:1``, ``mps``), else CUDA when torch sees one, else the CPU.  Chapters start
    with ``DEVICE = pt.default_device()`` and pass it to every prior, sampler, training loop and
    stepper, so the same chapter runs on a laptop and on a GPU machine unchanged."""
    return resolve_device(env("POSTERIOR_TUTOR_DEVICE") or None, what="POSTERIOR_TUTOR_DEVICE")


def resolve_device(name=None, what: str = "--device", exit_on_error: bool = False):
    """``name`` ('cpu', 'cuda', 'cuda:N', 'mps' or a torch.device) checked to be present here, or
    the default: CUDA when present, else the CPU.  Asking for a device torch does not see is a
    clear error naming the devices that are present (a ValueError, or with ``exit_on_error`` a
    SystemExit with that message, for command-line scripts)."""
    try:
        return _resolve_device(name, what)
    except ValueError as err:
        if exit_on_error:
            raise SystemExit(f"error: {err}") from None
        raise


def present_devices() -> list[str]:
    """The devices torch can use on this machine, e.g. ['cpu', 'cuda:0', 'cuda:1'] or ['cpu', 'mps']."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(max(torch.cuda.device_count(), 1))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def _resolve_device(name, what):
    import torch

    if name is None or name == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, (str, torch.device)):
        raise ValueError(f"{what}={name!r} is a {type(name).__name__}; give a device name such as "
                         f"'cpu' or 'cuda' (present here: {', '.join(present_devices())}).")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{what}={name!r} is not a device torch knows ({err}); use 'cpu', "
                         "'cuda', 'cuda:N' or 'mps'.") from None
    present = ", ".join(present_devices())
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{what}={name!r} asks for CUDA but torch sees no CUDA device here; use "
                         f"'cpu' (or leave it unset: the CPU is then used). Present: {present}.")
    if device.type == "cuda" and device.index is not None and torch.cuda.device_count() \
            and device.index >= torch.cuda.device_count():
        raise ValueError(f"{what}={name!r}: there is no CUDA device {device.index} here; "
                         f"present: {present}.")
    if device.type == "mps" and "mps" not in present_devices():
        raise ValueError(f"{what}={name!r} asks for Apple's MPS but torch sees no MPS device "
                         f"here; use one of the present devices: {present}.")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{what}={name!r}: posterior_tutor runs on 'cpu', 'cuda[:N]' or 'mps'; "
                         f"present here: {present}.")
    return device
