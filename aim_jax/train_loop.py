"""Run machinery shared by the learning and fitting loops.

(Filled in below: state, schedule, checkpoints, metrics, signals, progress and the driver.)
"""

from __future__ import annotations

import signal


class StopRequested(Exception):
  """Raised by a run after SIGTERM or Ctrl-C, once its checkpoint is written."""


class StopSignals:
  """Turns SIGTERM (and SIGINT, Ctrl-C) into a flag checked between steps, so a run stops with a
  checkpoint at the exact step instead of dying mid-write.

  `with StopSignals() as stop:` ... `if stop.requested: ...`. Outside the main thread it installs
  nothing (signals can only be handled there).
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = None  # The name of the signal received, or None.
    self._previous = {}

  def __enter__(self):
    for sig in self.SIGNALS:
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # Not the main thread.
        break
    return self

  def _handle(self, signum, frame):
    del frame
    if self.requested and signum == signal.SIGINT:
      raise KeyboardInterrupt  # A second Ctrl-C stops at once.
    self.requested = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)
    self._previous = {}
