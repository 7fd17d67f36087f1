"""The PyTorch reference of benchmarks/learn_step.py computes our loss (when torch is installed).

torch is the `bench` extra, not a test dependency: without it these tests skip.
"""

import os
import sys

import pytest

torch = pytest.importorskip('torch')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'benchmarks'))

import learn_step  # noqa: E402
import steppers  # noqa: E402
import torch_reference  # noqa: E402

from aim_jax.anatomy import constraints as constraints_lib  # noqa: E402
from aim_jax.data import synthetic  # noqa: E402


@pytest.fixture(scope='module')
def small_actor():
  actor = synthetic.make_synthetic_actor(resolution=24)
  return actor, constraints_lib.compute_constraints(actor, source_fraction=0.1)


def test_same_total_loss_at_same_parameters_and_draws(small_actor):
  actor, constraints = small_actor
  config = steppers.learn_step_config(16, 2, sine='xla')
  config.train.symmetry_batch = 64
  ours, theirs, terms = learn_step.check_same_terms(config, actor, constraints)
  assert {'neutral', 'bone_smooth', 'normal_smooth', 'fold', 'expression_small'} <= set(terms)
  assert theirs == pytest.approx(ours, rel=1e-5)


def test_a_different_jaw_changes_the_reference_loss(small_actor, monkeypatch):
  actor, constraints = small_actor
  config = steppers.learn_step_config(16, 2, sine='xla')
  original = torch_reference.load_params

  def shifted(model, params):
    original(model, params)
    with torch.no_grad():
      model.translation.add_(0.05)
  monkeypatch.setattr(torch_reference, 'load_params', shifted)
  ours, theirs, _ = learn_step.check_same_terms(config, actor, constraints)
  assert theirs != pytest.approx(ours, rel=1e-5)


def test_unsupported_terms_are_refused(small_actor):
  actor, constraints = small_actor
  config = steppers.learn_step_config(16, 2)
  config.loss.weights.bone_symmetry = 0.1
  with pytest.raises(ValueError, match='bone_symmetry'):
    torch_reference.make_step(config, actor, constraints)
