"""Progress lines for long loops: step, loss terms, rate and time left."""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional


def format_duration(seconds: float) -> str:
  seconds = max(0.0, float(seconds))
  if seconds < 60:
    return f'{seconds:.0f}s'
  if seconds < 3600:
    return f'{int(seconds // 60)}m{int(seconds % 60):02d}s'
  return f'{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m'


class Progress:
  """Builds one line per `update` (printed by `flush`, after any `note`) and the metrics record.

  The rate is measured between updates (so compile time shows only in the first one); time
  left extrapolates that rate to `total`.
  """

  def __init__(self, total: int, start: int = 0, log: Optional[Callable[[str], None]] = print,
               unit: str = 'steps'):
    self.total, self.log, self.unit = total, log, unit
    self._start_time = self._last_time = time.perf_counter()
    self._last_step = start
    self._pending = None

  def update(self, step: int, values: Dict[str, float]) -> Dict:
    now = time.perf_counter()
    rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_time, self._last_step = now, step
    eta = (self.total - step) / max(rate, 1e-9)
    record = {'step': step, **values, 'rate': rate, 'elapsed_s': now - self._start_time,
              'eta_s': eta}
    terms = '  '.join(f'{k} {v:.3g}' for k, v in values.items() if k != 'total')
    self._pending = (f'step {step}/{self.total}  loss {values.get("total", float("nan")):.4g}  '
                     f'[{terms}]  {rate:.1f} {self.unit}/s  left {format_duration(eta)}')
    return record

  def note(self, text: str):
    """Appends text to the current line (call right after `update`)."""
    if self._pending is not None:
      self._pending += f'  {text}'

  def flush(self):
    if self._pending is not None and self.log:
      self.log(self._pending)
    self._pending = None
