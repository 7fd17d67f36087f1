"""The `metrics.jsonl` format of learning and fitting runs: one JSON object per logged step.

Every record has 'step' (int), the loss terms (floats), and 'rate' (steps/s), 'elapsed_s',
'eta_s'. A resumed run first truncates the file to its checkpoint's step, so each step appears
once. This module is the only one that reads or writes the format.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Tuple

import numpy as np

from aim_jax import files

FILE = 'metrics.jsonl'
BOOKKEEPING = ('step', 'rate', 'elapsed_s', 'eta_s')


def path_in(workdir: str) -> str:
  return os.path.join(workdir, FILE)


def _strict(value):
  """Non-finite floats as null, so every line is strict JSON."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def append(path: str, record: Dict):
  """Appends one record (non-finite values written as null)."""
  with open(path, 'a') as f:
    f.write(json.dumps({k: _strict(v) for k, v in record.items()}) + '\n')


def read(path: str) -> List[Dict]:
  """Every record of a metrics file ([] when it does not exist); a torn last line is skipped."""
  if not os.path.exists(path):
    return []
  records = []
  with open(path) as f:
    for line in f:
      if not line.strip():
        continue
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:
        continue  # A line cut short by a kill.
  return records


def truncate(path: str, step: int):
  """Keeps only the records logged at or before `step` (a resumed run logs the rest again);
  with `step` 0 the file is emptied."""
  if not os.path.exists(path):
    return
  kept = [r for r in read(path) if r.get('step', 0) <= step]
  files.write_text(path, ''.join(json.dumps(record) + '\n' for record in kept))


def curves(path: str) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
  """(steps (N,), {term: (N,)}) with NaN where a record lacks a term."""
  records = read(path)
  names = []
  for r in records:
    names += [k for k in r if k not in BOOKKEEPING and k not in names]
  steps = np.array([r['step'] for r in records], int)
  return steps, {n: np.array([np.nan if r.get(n) is None else r[n] for r in records], float)
                 for n in names}


def median_rate(path: str):
  """Median logged steps per second, leaving out the first record (compile time); None when
  there is no record."""
  rates = [r['rate'] for r in read(path) if r.get('rate') is not None]
  rates = rates[1:] or rates
  return float(np.median(rates)) if rates else None
