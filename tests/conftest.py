"""Shared fixtures: `tiny_actor`, a small hand-made actor (see tests/tiny.py)."""

import pytest

from tiny import make_tiny_actor


@pytest.fixture
def tiny_actor():
  """A fresh 12 x 12-vertex, 3-shape symmetric actor in mm (tests/tiny.py)."""
  return make_tiny_actor()
