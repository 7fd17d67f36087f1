"""End to end: an edited model workdir (aim_jax/runs/edit.py) loads, fits and carries the edit
into a performance; experiments/edit_anatomy.py reports bad input in one line."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import with_overrides
from tiny_models import make_model_workdir

from aim_jax import edit, retarget
from aim_jax import model_dir as model_dir_lib
from aim_jax.fitting import methods
from aim_jax.runs import edit as edit_run
from aim_jax.runs import fit as fit_run
from aim_jax.runs import retarget as retarget_run
from configs import edit as edit_config
from configs import fit_test

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  return make_model_workdir(str(tmp_path_factory.mktemp('base_model')), seed=0)


def _config(**fields):
  config = edit_config.get_config()
  config.region.center_vertex = -1
  return with_overrides(config, **fields)


def test_edited_model_workdir_loads_fits_and_carries_into_a_performance(tmp_path, model_dir,
                                                                         actor):
  out = str(tmp_path / 'edited')
  config = _config(**{'region.center_vertex': int(np.argmax(actor.neutral[:, 0])),
                      'region.radius_mm': 12.0, 'thickness_scale': 1.5,
                      'output.render_shapes': 'smile'})
  report = edit_run.run_edit(config, model_dir, out, log=None)
  assert report['neutral_displacement_mm']['untouched_max'] == 0.0
  assert report['bone_displacement_mm']['untouched_max'] == 0.0
  assert report['neutral_displacement_mm']['affected']['max'] > 0.5
  assert max(s['carry_residual_mm'] for s in report['shapes'].values()) < 1e-4
  for name in ('model.json', 'edit.npz', 'edit_report.json', 'renders/before_after.png',
               'meshes/00_neutral.ply'):
    assert os.path.exists(os.path.join(out, name)), name
  with pytest.raises(model_dir_lib.ModelDirError, match='already holds a model'):
    edit_run.run_edit(config, model_dir, out, log=None)

  # The edited workdir is a model: the fitting pipeline loads it with the edit applied.
  base = model_dir_lib.load_fit_model(model_dir)
  edited = model_dir_lib.load_fit_model(out)
  loaded = model_dir_lib.load_model(out)
  assert 'edit' not in loaded.params and len(loaded.edit) == len(edited.edit) >= 1
  fields = edit.evaluate(loaded.params, loaded.spec, np.asarray(actor.neutral, np.float32),
                         loaded.edit)
  np.testing.assert_allclose(np.asarray(edited.basis.neutral), fields['shapes'][0], atol=1e-5)
  np.testing.assert_allclose(np.asarray(edited.gbs_basis.neutral), fields['shapes'][0],
                             atol=1e-5)
  untouched = np.asarray(edit.region_weight(loaded.edit, actor.neutral)) <= 0
  np.testing.assert_array_equal(np.asarray(edited.basis.neutral)[untouched],
                                np.asarray(base.basis.neutral)[untouched])

  # A performance composed on the base carries the edit: same coefficients and jaws on the edited
  # model move only the edited region, by the neutral's change carried through the jaw skinning.
  fit_config = fit_test.get_config()
  fit_config.methods = 'aim'
  fit_config.output.render = False
  targets, truth = methods.synthetic_sequence_targets(fit_config, edited.actor)
  fit_run.fit_and_report(fit_config, edited, targets, truth, str(tmp_path / 'fit'), log=None)
  fit = retarget_run.load_source_fit(str(tmp_path / 'fit'), actor.num_vertices,
                                 actor.num_shapes - 1)
  on_base = retarget.compose_frames(base.basis, fit['coefficients'], fit['jaw_rotation'],
                                    fit['jaw_translation'])
  on_edit = retarget.compose_frames(edited.basis, fit['coefficients'], fit['jaw_rotation'],
                                    fit['jaw_translation'])
  np.testing.assert_allclose(on_edit, fit['frames'], atol=1e-4)
  np.testing.assert_array_equal(on_edit[:, untouched], on_base[:, untouched])
  delta = np.asarray(edited.basis.neutral) - np.asarray(base.basis.neutral)
  k = np.asarray(base.basis.skinning)[:, None]
  carried = (1 - k) * delta[None] + k * np.einsum('fij,vj->fvi', fit['jaw_rotation'], delta)
  np.testing.assert_allclose(on_edit - on_base, carried, atol=1e-3)


def test_edit_command_reports_bad_input_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, 'experiments/edit_anatomy.py', f'--model_dir={tmp_path}/nothing',
       f'--workdir={tmp_path}/out'], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith('error: ') and 'model.json' in lines[-1]
