"""Atomic file writes (strict JSON, npz, text) and the JSON read that goes with them.

Each write goes to a temporary file beside the target, then `os.replace`s it, so a reader (or a
rerun after a kill) sees the old file or the new one, never half of one. JSON is strict: NaN and
infinities become null (`allow_nan=False`), numpy scalars and arrays become numbers and lists.
`write_npz_chunks` writes an npz of arrays too long to hold, from files of consecutive chunks of
them.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from typing import Any, Dict, Sequence

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


_BLOCK_BYTES = 1 << 24  # Bytes handed to the zip stream at a time.


def npz_headers(path: str) -> Dict[str, tuple]:
  """{name: (shape, dtype)} of the arrays of an .npz, from their .npy headers (no data read)."""
  out = {}
  with zipfile.ZipFile(path) as archive:
    for info in archive.infolist():
      if not info.filename.endswith('.npy'):
        continue
      with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(member)
      out[info.filename[:-len('.npy')]] = (tuple(shape), dtype)
  return out


def _write_npy_header(stream, shape: tuple, dtype: np.dtype):
  """The .npy header np.save would write for a C-ordered array of this shape and dtype."""
  header = {'descr': np.lib.format.dtype_to_descr(dtype), 'fortran_order': False,
            'shape': shape}
  try:
    np.lib.format.write_array_header_1_0(stream, header)
  except ValueError:  # Too long for version 1.0 (as np.save, version 2.0 then).
    np.lib.format.write_array_header_2_0(stream, header)


def write_npz_chunks(path: str, chunks: Sequence[str], compressed: bool = True) -> str:
  """Writes to the .npz `path` (atomically) every array of the .npz files `chunks`, each
  concatenated along its first axis over the chunks in order; returns `path`.

  Memory is one chunk of one array: each .npy member is streamed into the zip (header with the
  whole shape, then each chunk's bytes). `np.load(path)` gives exactly what `write_npz(path,
  compressed, **{k: np.concatenate([np.load(c)[k] for c in chunks])})` would write: the same
  names in the same order, values and dtypes.

  Args:
    chunks: .npz files with the same array names, each name with the same dtype and the same
      shape but for the first axis in every file.
    compressed: deflate the members (as `np.savez_compressed`), else store them (`np.savez`).
  Raises:
    ValueError: no chunks, or chunks that do not match (the message names the file).
  """
  if not chunks:
    raise ValueError(f'{path}: no chunk files to write from')
  headers = [npz_headers(chunk) for chunk in chunks]
  first = headers[0]
  for chunk, header in zip(chunks, headers):
    if list(header) != list(first):
      raise ValueError(f'{chunk}: arrays {sorted(header)}, but {chunks[0]} has {sorted(first)}')
    for name, (shape, dtype) in header.items():
      if not shape or shape[1:] != first[name][0][1:] or dtype != first[name][1]:
        raise ValueError(f'{chunk}: {name} is {dtype} {shape}, which does not continue '
                         f'{chunks[0]}\'s {first[name][1]} {first[name][0]}')
  _parent(path)
  tmp = path[:-4] + '.tmp.npz' if path.endswith('.npz') else path + '.tmp.npz'
  try:
    with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
      for name, (shape, dtype) in first.items():
        total = (sum(h[name][0][0] for h in headers),) + shape[1:]
        with archive.open(name + '.npy', 'w', force_zip64=True) as member:
          _write_npy_header(member, total, dtype)
          for chunk in chunks:
            with np.load(chunk) as data:
              array = np.ascontiguousarray(data[name])
            raw = memoryview(array.reshape(-1).view(np.uint8))
            for start in range(0, len(raw), _BLOCK_BYTES):
              member.write(raw[start:start + _BLOCK_BYTES])
            del array, raw
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path
