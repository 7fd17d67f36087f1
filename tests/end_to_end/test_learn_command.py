"""End to end: a small learning run (aim_jax/runs/learn.py) reduces the error and writes its
outputs and a model workdir that loads."""

import json

import jax
import numpy as np
import pytest

from aim_jax import learning, model_dir
from aim_jax.runs import learn as learn_run
from aim_jax.runs import learn_outputs
from configs import learn_test


def test_learning_reduces_error_and_writes_outputs(tmp_path, actor_and_constraints):
  actor, _ = actor_and_constraints
  config = learn_test.get_config()
  config.train.num_steps = 150
  config.output.render = True
  config.output.shapes_to_render = 2
  summary = learn_run.learn_and_evaluate(config, actor, str(tmp_path), log=None)
  assert summary['reconstruction_mm']['mean'] < 2.5
  spec = learning.model_spec(config, actor)
  untrained = learning.create_state(config, spec, learning.make_optimizer(config)).params
  initial = learning.reconstruction_error_mm(untrained, spec, actor).mean()
  assert summary['reconstruction_mm']['mean'] < 0.5 * initial
  for subset in ('constrained', 'unconstrained'):
    assert np.isfinite(summary['anatomy']['bone_mm'][subset]['mean'])
  quality = summary['anatomy_quality']
  for figures in (quality, quality['ground_truth']):
    for key in ('thickness_asymmetry_mm', 'bone_asymmetry_mm'):
      assert np.isfinite(figures[key]['mean']) and np.isfinite(figures[key]['p95']), key
    for key in ('flipped_triangles_percent', 'thickness_roughness_mm'):
      assert np.isfinite(figures[key]), key
  assert np.isfinite(quality['thickness_roughness_vs_truth'])
  assert 'rhine_depth' not in quality  # The synthetic actor is not cut from ICT-FaceKit.
  assert 'anatomy quality:' in learn_outputs.format_summary(summary)
  written = json.loads((tmp_path / 'summary.json').read_text())
  assert written['anatomy_quality']['flipped_triangles_percent'] == pytest.approx(
      quality['flipped_triangles_percent'])
  assert written['reconstruction_mm']['mean'] == pytest.approx(summary['reconstruction_mm']['mean'])
  for name in ('loss_curves.png', 'renders/anatomy.png', 'renders/error.png', 'renders/shapes.png',
               'meshes/anatomy.ply', 'meshes/neutral_thickness.ply',
               f'meshes/reconstructed/{actor.shape_names[-1]}.ply'):
    assert (tmp_path / name).exists(), name
  model = model_dir.load_model(str(tmp_path))
  params, info = model.params, model.info
  assert model.edit is None
  assert info['actor']['num_vertices'] == actor.num_vertices
  np.testing.assert_allclose(params['jaw']['rot6d'], jax.device_get(params['jaw']['rot6d']))
