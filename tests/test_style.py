"""The tree passes the project's linter (ruff, configured in pyproject.toml)."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ruff():
  beside = os.path.join(os.path.dirname(sys.executable), 'ruff')
  return beside if os.path.exists(beside) else shutil.which('ruff')


@pytest.mark.skipif(_ruff() is None, reason='ruff is not installed (pip install -e .[test])')
def test_ruff_check_passes():
  run = subprocess.run([_ruff(), 'check', '--output-format=concise', '.'], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
  assert run.returncode == 0, run.stdout + run.stderr
