"""End to end: aim_jax/runs/compare_anatomy.py on two tiny model workdirs of one actor; the
figures are those the learning summary computes (`anatomy_quality`); bad input is refused before
anything is written."""

import os

import numpy as np
import pytest
from tiny_models import make_model_workdir

from aim_jax import anatomy_quality
from aim_jax import model_dir as model_dir_lib
from aim_jax.models import aim
from aim_jax.runs import compare_anatomy


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  """Two models of the seed-0 synthetic actor (identical here) and one of the seed-1 actor."""
  return [make_model_workdir(str(tmp_path_factory.mktemp(f'model_{i}')), seed=s)
          for i, s in enumerate((0, 0, 1))]


def test_a_symmetric_thickness_has_no_asymmetry_map(tiny_actor):
  x = tiny_actor.neutral[:, 0]
  assert anatomy_quality.scalar_asymmetry_map(5.0 + np.cos(x), tiny_actor.symmetry).max() == (
      pytest.approx(0.0))
  left = np.where(x > 0, 4.0, 1.0)
  paired = np.asarray(tiny_actor.symmetry) >= 0
  off_plane = paired & (np.abs(x) > 1e-9)
  np.testing.assert_allclose(
      anatomy_quality.scalar_asymmetry_map(left, tiny_actor.symmetry)[off_plane], 3.0)


def test_comparison_writes_the_learning_summary_figures(tmp_path, models):
  out = str(tmp_path / 'cmp')
  figures = compare_anatomy.run_comparison(models[:2], ['a', 'b'], out, log=None)
  assert set(figures) == {'a', 'b', 'ground truth'}
  model = model_dir_lib.load_model(models[0])
  actor = model_dir_lib.actor_of_model(model.info)
  fields = aim.evaluate_chunked(model.params, actor.neutral, model.spec)
  same = anatomy_quality.anatomy_quality(fields, actor)
  assert figures['a']['flipped_triangles'] == same['flipped_triangles']
  assert figures['a']['thickness_asymmetry_mm']['mean'] == pytest.approx(
      same['thickness_asymmetry_mm']['mean'], rel=1e-6)
  assert figures['ground truth']['flipped_triangles'] == 0
  for name in ('comparison.json', 'comparison.md', 'renders/anatomy_comparison.png'):
    assert os.path.getsize(os.path.join(out, name)) > 100, name


def test_bad_input_is_refused_before_writing(tmp_path, models):
  out = str(tmp_path / 'refused')
  with pytest.raises(ValueError, match='one label per model'):
    compare_anatomy.run_comparison(models[:2], ['a'], out, log=None)
  with pytest.raises(ValueError, match='labels must differ'):
    compare_anatomy.run_comparison(models[:2], ['a', 'a'], out, log=None)
  with pytest.raises(ValueError, match='another actor'):
    compare_anatomy.run_comparison([models[0], models[2]], ['a', 'b'], out, log=None)
  assert not os.path.exists(out)
