"""Files that survive a crash and say when they are damaged: checksummed, atomically written
checkpoints, the previous one kept, and model cards read with clear errors.

    write(state, out / "last.pt", keep_previous=True)  # temp, fsync, prev.pt <- last.pt, rename
    state, used = read_latest(out / "last.pt")           # last.pt, or prev.pt if it is damaged

The checksum.  Every checkpoint is a dict; ``write`` adds ``"checksum": "sha256:<hex>"``, the
sha256 of the dict's *content* (each tensor's dtype, shape and bytes, every other value's repr,
keys sorted), and ``verify`` recomputes it after ``torch.load(weights_only=True)``.  It lives
inside the file, so a file needs no companion to be checked.  A flipped byte either breaks the
zip or pickle (torch.load fails) or changes a value (the checksum no longer matches); the only
flips that pass change bytes that carry no content (zip padding), and then what loads is bitwise
what was saved.  The shipped files in ``data/`` predate this and are checked against the sha256
of the whole file in their ``model_card.json`` instead.

Writing.  The state goes to a temporary file in the same folder, is flushed and fsync'ed, and is
renamed over the target (atomic on POSIX).  With ``keep_previous`` the current file is kept as
``prev.pt`` (``<stem>.prev<suffix>`` for other names) without ever leaving its place:

    1. .last.pt.<pid>.tmp       <- the new state (written, fsync'ed)
    2. .last.pt.<pid>.prev.tmp  <- a hard link to last.pt (a copy where links are not supported)
    3. prev.pt                  <- rename of 2 (atomic)
    4. last.pt                  <- rename of 1 (atomic)

so at every instant ``last.pt`` exists and is the newest complete checkpoint (the old one until
step 4, the new one from then on), and ``prev.pt`` is a complete earlier one.  A kill -9 at any
moment loses at most the checkpoint being written; leftover temporary files are removed by the
next ``read_latest``.  (Renaming last.pt to prev.pt first, as this module once did, left a window
with no last.pt.)

Model cards (``model_card.json``: the sha256 of the weights beside them, settings, metrics) are
written by ``write_card`` with their own ``card_sha256`` and read by ``read_card``: a card that
does not parse, lacks the weights' sha256 or no longer matches its own checksum gives a
CheckpointError.  (The shipped cards predate ``card_sha256``; it is checked where present.)
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import torch

CHECKSUM = "checksum"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, empty, truncated/corrupt, wrong checksum or
    architecture, unreadable model card."""


def content_sha256(obj) -> str:
    """sha256 of a checkpoint's content (tensors by dtype, shape and bytes; the rest by repr)."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h, obj) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for key in sorted(obj, key=repr):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__[0]}{len(obj)};".encode())
        for item in obj:
            _feed(h, item)
    else:  # int, float (repr round-trips exactly), str, bool, None, torch.dtype, ...
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def previous_path(path) -> Path:
    """Where ``write(..., keep_previous=True)`` keeps the file it replaces (last.pt -> prev.pt)."""
    path = Path(path)
    return path.with_name("prev" + path.suffix if path.stem == "last" else
                          f"{path.stem}.prev{path.suffix}")


def write(state: dict, path, keep_previous: bool = False) -> Path:
    """torch.save ``state`` with its content checksum: temp file, fsync, atomic rename."""
    if not isinstance(state, dict):
        raise TypeError(f"a checkpoint is a dict, got {type(state).__name__}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {k: v for k, v in state.items() if k != CHECKSUM}
    body[CHECKSUM] = "sha256:" + content_sha256(body)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(body, f)
            f.flush()
            os.fsync(f.fileno())
        _put_in_place(tmp, path, keep_previous)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def _put_in_place(tmp: Path, path: Path, keep_previous: bool) -> None:
    """Steps 2-4 of a write (module docstring): keep the current file as the previous one while
    it stays in place, then rename the complete temporary file over it."""
    if keep_previous and path.exists():
        keep = path.with_name(f".{path.name}.{os.getpid()}.prev.tmp")
        try:
            try:
                os.link(path, keep)
            except OSError:              # no hard links here (some file systems): a copy
                shutil.copyfile(path, keep)
                with open(keep, "rb+") as f:
                    os.fsync(f.fileno())
            os.replace(keep, previous_path(path))
        finally:
            if keep.exists():
                keep.unlink()
    os.replace(tmp, path)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows); the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path) -> dict:
    """torch.load(weights_only=True) with clear errors for a missing, empty or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was never written or "
                              "its write was interrupted. Delete it and restore or retrain it.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, not a torch file, pickled code objects, ...
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"cannot read checkpoint {path}: it is truncated or not a "
                              f"posterior_tutor checkpoint ({type(err).__name__}: {first}). "
                              "Restore it, or delete it and retrain.") from None


def verify(ckpt, path, required: bool = False, warn: bool = True) -> dict:
    """Check (and remove) the embedded content checksum.  A file without one (written by an
    older version) loads with a warning (``warn``), or is refused when ``required``."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a posterior_tutor checkpoint (a "
                              f"{type(ckpt).__name__}, not a dict).")
    stored = ckpt.pop(CHECKSUM, None)
    if stored is None:
        if required:
            raise CheckpointError(f"{path} carries no checksum, so it cannot be checked for "
                                  "corruption; save it again with this version.")
        if warn:
            warnings.warn(f"{path} carries no checksum (saved by an older posterior_tutor), so it "
                          "cannot be checked for corruption; save it again to add one.",
                          stacklevel=3)
        return ckpt
    got = "sha256:" + content_sha256(ckpt)
    if got != stored:
        raise CheckpointError(f"checkpoint {path} is corrupt: its content does not match the "
                              f"checksum it was saved with ({got[:19]}... vs {str(stored)[:19]}"
                              "...). Restore it from a copy, or delete it and retrain.")
    return ckpt


def read_latest(path, move_aside: bool = True):
    """(checkpoint, path it came from) of the newest readable one of ``path`` and its previous
    (``previous_path``), or (None, None) when neither exists.  A damaged ``path`` is renamed
    ``<name>.corrupt`` (so that the next write does not make it the previous one) with a warning;
    both damaged: CheckpointError naming both."""
    path, prev = Path(path), previous_path(path)
    if move_aside:  # temporary files of writes that were killed midway
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
    errors = []
    for candidate in (path, prev):
        if not candidate.exists():
            continue
        try:
            ckpt = verify(load(candidate), candidate)
        except CheckpointError as err:
            errors.append(str(err))
            continue
        if errors:
            if move_aside and path.exists():
                os.replace(path, path.with_name(path.name + ".corrupt"))
            warnings.warn(f"{errors[0]} Resuming from the previous checkpoint {candidate} "
                          f"(step {ckpt.get('step', '?')}) instead; the damaged file is kept as "
                          f"{path.name}.corrupt.", stacklevel=2)
        return ckpt, candidate
    if errors:
        raise CheckpointError(" ".join(errors) + f" No usable checkpoint is left in {path.parent}:"
                              " delete the folder to start again, or use another output folder.")
    return None, None


def changed_settings(saved: dict, now: dict, may_change=(), label: str = "this call") -> list:
    """``"key=old (label: key=new)"`` for each setting of a resumed run that differs from the
    one it started with (lists and tuples compare alike), leaving out ``may_change``."""
    def norm(v):
        return tuple(norm(x) for x in v) if isinstance(v, (list, tuple)) else v
    return [f"{k}={norm(saved.get(k))!r} ({label}: {k}={norm(now.get(k))!r})"
            for k in sorted(set(saved) | set(now), key=str)
            if k not in may_change and norm(saved.get(k)) != norm(now.get(k))]


CARD_CHECKSUM = "card_sha256"


def card_sha256(card: dict) -> str:
    """sha256 of a card's content (its JSON with sorted keys, without ``card_sha256``)."""
    body = {k: v for k, v in card.items() if k != CARD_CHECKSUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_card(path, card: dict, indent: int = 2) -> Path:
    """Write a ``model_card.json`` with its own checksum (``card_sha256``), atomically."""
    path = Path(path)
    body = {k: v for k, v in card.items() if k != CARD_CHECKSUM}
    body[CARD_CHECKSUM] = card_sha256(body)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(body, indent=indent) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_card(path, require_sha256: bool = True) -> dict:
    """A ``model_card.json`` as a dict (without its ``card_sha256``), with a CheckpointError when
    it does not parse, is not a JSON object, does not match its own ``card_sha256`` (cards written
    by this version carry one) or (``require_sha256``) lacks the sha256 of its weights."""
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"model card {path} cannot be read ({type(err).__name__}: {err}); "
                              "restore it (git checkout data/) or rewrite it with the command "
                              "that made the weights beside it.") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"model card {path} is not a JSON object; restore it.")
    stored = card.pop(CARD_CHECKSUM, None)
    if stored is not None and stored != card_sha256(card):
        raise CheckpointError(f"checksum mismatch for model card {path}: it was changed after it "
                              "was written (its card_sha256 does not match). Restore it; if you "
                              "edited it on purpose, delete its card_sha256 line.")
    sha = card.get("sha256")
    if require_sha256 and not (isinstance(sha, str) and len(sha) == 64):
        raise CheckpointError(f"model card {path} has no valid 'sha256' of its weights, so they "
                              "cannot be verified; restore the card (git checkout data/) or pass "
                              "check=False to load them unverified.")
    return card
