"""Checkpoints: named arrays in a ``.npz`` (no pickles) plus a JSON of everything else.

A checkpoint of a run folder is two files:

- ``ckpt-{step:08d}.npz``: the arrays (network parameters, optimiser state), written
  atomically, numeric dtypes only, readable with ``np.load(..., allow_pickle=False)``;
- ``checkpoint.json``: the step, the name and SHA-256 of that ``.npz``, the state of the
  NumPy random generator (``Generator.bit_generator.state``, plain integers) and any other
  JSON-serialisable fields, written atomically after the ``.npz``.

``checkpoint.json`` is replaced only once its ``.npz`` is complete, so a run killed at any
moment leaves a consistent checkpoint: the previous one or the new one. Older ``.npz`` files
are deleted after the switch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..io import atomic_path, save_json

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_JSON", "rng_state", "make_rng"]

CHECKPOINT_JSON = "checkpoint.json"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rng_state(rng: np.random.Generator) -> dict:
    """The generator's state as plain JSON-serialisable values."""
    return rng.bit_generator.state


def make_rng(state: dict) -> np.random.Generator:
    """A ``Generator`` continuing exactly from ``state`` (see :func:`rng_state`)."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def save_checkpoint(run_dir, step, arrays, meta):
    """Write the checkpoint of ``step`` into ``run_dir``.

    Parameters
    ----------
    run_dir : str or Path
        An existing folder.
    step : int
    arrays : dict[str, array]
        Numeric arrays of any array-API library (copied to the host); names are the keys
        of the ``.npz``.
    meta : dict
        JSON-serialisable fields stored in ``checkpoint.json`` beside ``step``, ``arrays``
        and ``sha256``.

    Returns
    -------
    Path of the ``.npz`` written.
    """
    run_dir = Path(run_dir)
    host = {}
    for name, value in arrays.items():
        a = np.asarray(to_numpy(value))
        if a.dtype.kind not in "biuf":
            raise TypeError(f"checkpoint array {name!r} has dtype {a.dtype}; only numeric "
                            "arrays are stored (no pickles)")
        host[name] = a
    npz = run_dir / f"ckpt-{int(step):08d}.npz"
    with atomic_path(npz, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **host)
    record = dict(meta, step=int(step), arrays=npz.name, sha256=_sha256(npz))
    save_json(run_dir / CHECKPOINT_JSON, record, force=True)
    for old in run_dir.glob("ckpt-*.npz"):
        if old.name != npz.name:
            old.unlink(missing_ok=True)
    return npz


def load_checkpoint(run_dir):
    """``(arrays, meta)`` of the checkpoint in ``run_dir``: arrays as NumPy arrays.

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` holds no checkpoint.
    ValueError
        When the ``.npz`` does not match the checksum recorded in ``checkpoint.json``.
    """
    run_dir = Path(run_dir)
    record_path = run_dir / CHECKPOINT_JSON
    if not record_path.exists():
        raise FileNotFoundError(f"{run_dir} holds no {CHECKPOINT_JSON}; nothing to resume "
                                "or load (train a model there first)")
    meta = json.loads(record_path.read_text())
    npz = run_dir / meta["arrays"]
    if not npz.exists():
        raise FileNotFoundError(f"{record_path} names {npz.name}, which is missing")
    if _sha256(npz) != meta["sha256"]:
        raise ValueError(f"{npz} does not match the checksum in {record_path}; the "
                         "checkpoint is damaged")
    with np.load(npz, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return arrays, meta
