"""Atomic file writes (strict JSON, npz, text) and the JSON read that goes with them.

Each write goes to a temporary file beside the target, then `os.replace`s it, so a reader (or a
rerun after a kill) sees the old file or the new one, never half of one. JSON is strict: NaN and
infinities become null (`allow_nan=False`), numpy scalars and arrays become numbers and lists.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np


def to_json(value: Any) -> Any:
  """`value` with numpy types made plain and non-finite floats made None (strict JSON)."""
  if isinstance(value, dict):
    return {k: to_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_json(v) for v in value]
  if isinstance(value, np.ndarray):
    return to_json(value.tolist())
  if isinstance(value, np.generic):
    return to_json(value.item())
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _parent(path: str):
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)


def write_json(path: str, data: Any, indent: int = 1) -> str:
  """Writes `data` as strict JSON (NaN, inf -> null) to `path` atomically; returns `path`."""
  _parent(path)
  text = json.dumps(to_json(data), indent=indent, allow_nan=False)
  return write_text(path, text)


def read_json(path: str) -> Any:
  """The JSON content of `path`; ValueError naming the file when it is not JSON."""
  with open(path, encoding='utf-8') as f:
    try:
      return json.load(f)
    except ValueError as err:
      raise ValueError(f'{path}: not valid JSON ({err})') from None


def write_text(path: str, text: str) -> str:
  """Writes `text` (UTF-8) to `path` atomically; returns `path`."""
  _parent(path)
  tmp = path + '.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    f.write(text)
  os.replace(tmp, path)
  return path


def write_npz(path: str, compressed: bool = True, **arrays) -> str:
  """Writes arrays to the .npz `path` atomically (compressed by default); returns `path`."""
  _parent(path)
  tmp = path[:-4] + '.tmp.npz' if path.endswith('.npz') else path + '.tmp.npz'
  (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
  os.replace(tmp, path)
  return path
