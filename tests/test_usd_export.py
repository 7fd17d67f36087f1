"""USD export (aim_jax/usd_export.py, aim_jax/runs/export_usd.py, experiments/export_usd.py):
every exported file is read back with pxr and compared with what the code computes (points,
composed jaw transforms, primvars), checked by USD's validators, and bad input writes nothing."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

pxr = pytest.importorskip('pxr')
from pxr import Sdf, Usd, UsdGeom  # noqa: E402
from tiny_models import make_model_workdir  # noqa: E402

from aim_jax import model_dir as model_dir_lib  # noqa: E402
from aim_jax import rigid_np, usd_export  # noqa: E402
from aim_jax.data import synthetic_performance  # noqa: E402
from aim_jax.fitting import methods  # noqa: E402
from aim_jax.models import aim  # noqa: E402
from aim_jax.runs import edit as edit_run  # noqa: E402
from aim_jax.runs import export_usd  # noqa: E402
from aim_jax.runs import fit as fit_run  # noqa: E402
from aim_jax.runs import learn as learn_run  # noqa: E402
from configs import edit as edit_config  # noqa: E402
from configs import fit_test, learn_test  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_FRAMES = 5


def _rotations(rng, count, scale=0.3):
  """(count, 3, 3) random rotations (Rodrigues of normal rotation vectors times `scale`)."""
  vectors = scale * rng.normal(size=(count, 3))
  angle = np.linalg.norm(vectors, axis=-1)[:, None, None]
  k = np.zeros((count, 3, 3))
  x, y, z = (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).T
  k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -z, y, -x
  k = k - np.transpose(k, (0, 2, 1))
  return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@pytest.fixture(scope='module')
def model(tmp_path_factory):
  """A tiny model directory (noisy, non-identity jaws), its actor and its evaluated fields."""
  path = make_model_workdir(str(tmp_path_factory.mktemp('usd') / 'model'))
  loaded = model_dir_lib.load_model(path)
  actor = model_dir_lib.actor_of_model(loaded.info)
  fields = aim.evaluate_chunked(loaded.params, actor.neutral, loaded.spec)
  rotation, translation = (np.asarray(a) for a in aim.jaw_transforms(loaded.params))
  return {'dir': path, 'actor': actor, 'fields': fields, 'rotation': rotation,
          'translation': translation, 'pivot': np.asarray(loaded.spec.pivot)}


@pytest.fixture(scope='module')
def fit_dir(model, tmp_path_factory):
  """A fit_sequence-like workdir: aim/fit.npz (the synthetic performance's jaws, frames a little
  off the truth), gbs/fit.npz (no jaw), report.json naming the synthetic seed."""
  folder = tmp_path_factory.mktemp('fit')
  truth = synthetic_performance.make_performance(model['actor'], NUM_FRAMES, seed=4)
  rng = np.random.default_rng(0)
  frames = truth.frames + rng.normal(scale=0.2, size=truth.frames.shape).astype(np.float32)
  os.makedirs(folder / 'aim')
  np.savez(folder / 'aim' / 'fit.npz', frames=frames, jaw_rotation=truth.jaw_rotation,
           jaw_translation=truth.jaw_translation, codes=np.zeros((NUM_FRAMES, 4)))
  os.makedirs(folder / 'gbs')
  np.savez(folder / 'gbs' / 'fit.npz', frames=frames, weights=np.zeros((NUM_FRAMES, 19)))
  (folder / 'report.json').write_text(json.dumps({'config': {'synthetic': {'seed': 4}}}))
  return {'dir': str(folder), 'frames': frames, 'truth': truth}


def _open(path):
  stage = Usd.Stage.Open(str(path))
  assert stage, path
  return stage


def _world(stage, prim_path, time):
  """World points of a mesh at `time`, composed by pxr (row vectors: [p 1] M)."""
  prim = stage.GetPrimAtPath(prim_path)
  points = np.asarray(UsdGeom.Mesh(prim).GetPointsAttr().Get(time), np.float64)
  m = np.asarray(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(time), np.float64)
  return points @ m[:3, :3] + m[3, :3]


def _digest(path):
  return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_the_checker_reports_a_stage_without_its_metadata(tmp_path):
  path = str(tmp_path / 'bare.usda')
  stage = Usd.Stage.CreateNew(path)
  UsdGeom.Mesh.Define(stage, '/Skin')  # No default prim, no up axis, no units.
  stage.GetRootLayer().Save()
  errors = usd_export.check_file(path)
  assert errors and any('Metadata' in e for e in errors), errors


def test_quaternions_reproduce_rotations():
  rng = np.random.default_rng(1)
  rotations = np.concatenate([_rotations(rng, 50, 1.5), np.diag([1., -1., -1.])[None],
                              np.diag([-1., 1., -1.])[None], np.eye(3)[None]])
  q = usd_export.quaternions(rotations)
  for r, (w, x, y, z) in zip(rotations, q):
    back = np.asarray(pxr.Gf.Matrix3d(pxr.Gf.Rotation(pxr.Gf.Quatd(w, x, y, z))))
    np.testing.assert_allclose(back.T, r, atol=1e-12)  # Gf matrices act on row vectors.
  assert np.all(q[:, 0] >= 0)


def test_model_export_reads_back(model, tmp_path):
  out = str(tmp_path / 'model.usdc')
  export_usd.export_model(model['dir'], out, log=None)
  actor, fields = model['actor'], model['fields']
  assert usd_export.check_file(out) == []
  stage = _open(out)
  assert UsdGeom.GetStageMetersPerUnit(stage) == 0.001
  assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
  assert stage.GetDefaultPrim().GetPath() == '/Model'
  num_shapes = actor.num_shapes
  assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (0, num_shapes - 1)
  skin = UsdGeom.Mesh(stage.GetPrimAtPath('/Model/Skin'))
  np.testing.assert_array_equal(np.asarray(skin.GetFaceVertexIndicesAttr().Get()),
                                actor.faces.ravel())
  assert skin.GetSubdivisionSchemeAttr().Get() == 'none'
  np.testing.assert_allclose(np.asarray(skin.GetPointsAttr().Get()), fields['shapes'][0],
                             atol=1e-5)
  assert list(skin.GetPrim().GetAttribute('aim:shapeNames').Get()) == list(actor.shape_names)
  primvars = UsdGeom.PrimvarsAPI(skin)
  for name, want in (('thickness', fields['thickness']), ('jawSkinning', fields['skinning']),
                     ('anatomyNormal', fields['normal'])):
    primvar = primvars.GetPrimvar(name)
    assert primvar.GetInterpolation() == UsdGeom.Tokens.vertex
    np.testing.assert_allclose(np.asarray(primvar.Get()), want, atol=1e-5)
  assert primvars.GetPrimvar('anatomyNormal').GetTypeName() == Sdf.ValueTypeNames.Vector3fArray
  errors = np.linalg.norm(fields['shapes'] - actor.shapes, axis=-1)
  np.testing.assert_allclose(np.asarray(primvars.GetPrimvar('reconstructionError').Get()),
                             errors.mean(0), atol=1e-4)
  anatomy = UsdGeom.Mesh(stage.GetPrimAtPath('/Model/Anatomy'))
  np.testing.assert_allclose(np.asarray(anatomy.GetPointsAttr().Get()), fields['bone'], atol=1e-5)
  np.testing.assert_allclose(_world(stage, '/Model/Skull', Usd.TimeCode.Default()),
                             actor.skull.vertices, atol=1e-5)
  assert stage.GetPrimAtPath('/Model/JawPivot').IsA(UsdGeom.Xform)
  assert not np.allclose(model['rotation'][1:], np.eye(3), atol=1e-3)  # The test means something.
  for i in range(num_shapes):
    time = Usd.TimeCode(i)
    np.testing.assert_allclose(np.asarray(skin.GetPointsAttr().Get(time)), fields['shapes'][i],
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(primvars.GetPrimvar('shapeError').Get(time)),
                               errors[i], atol=1e-4)
    want = rigid_np.rigid_about_pivot(actor.mandible.vertices, model['rotation'][i],
                                      model['translation'][i], model['pivot'])
    np.testing.assert_allclose(_world(stage, '/Model/JawPivot/Mandible', time), want, atol=1e-3)


def test_performance_export_reads_back(model, fit_dir, tmp_path):
  out = str(tmp_path / 'perf.usda')
  export_usd.export_performance(fit_dir['dir'], out, 'aim', model['dir'], 'synthetic', fps=24,
                                log=None)
  assert usd_export.check_file(out) == []
  assert open(out).read(12) == '#usda 1.0\n(\n'
  stage = _open(out)
  assert stage.GetDefaultPrim().GetPath() == '/Performance'
  assert stage.GetTimeCodesPerSecond() == 24 and stage.GetFramesPerSecond() == 24
  assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (0, NUM_FRAMES - 1)
  skin = UsdGeom.Mesh(stage.GetPrimAtPath('/Performance/Skin'))
  assert skin.GetFaceVertexIndicesAttr().GetNumTimeSamples() == 0  # Topology once.
  assert skin.GetPointsAttr().GetTimeSamples() == list(range(NUM_FRAMES))
  truth, frames, actor = fit_dir['truth'], fit_dir['frames'], model['actor']
  error = np.linalg.norm(frames - truth.frames, axis=-1)
  primvars = UsdGeom.PrimvarsAPI(skin)
  for j in range(NUM_FRAMES):
    time = Usd.TimeCode(j)
    np.testing.assert_allclose(np.asarray(skin.GetPointsAttr().Get(time)), frames[j], atol=1e-5)
    np.testing.assert_allclose(np.asarray(primvars.GetPrimvar('error').Get(time)), error[j],
                               atol=1e-4)
    assert primvars.GetPrimvar('meanError').Get(time) == pytest.approx(
        error[j, actor.region].mean(), rel=1e-5)
    want = rigid_np.rigid_about_pivot(actor.mandible.vertices, truth.jaw_rotation[j],
                                      truth.jaw_translation[j], model['pivot'])
    np.testing.assert_allclose(_world(stage, '/Performance/JawPivot/Mandible', time), want,
                               atol=1e-3)
    np.testing.assert_allclose(_world(stage, '/Performance/Skull', time), actor.skull.vertices,
                               atol=1e-5)


def test_head_pose_composes_with_the_jaw(model, tmp_path):
  actor, rng = model['actor'], np.random.default_rng(2)
  jaw_r, head_r = _rotations(rng, NUM_FRAMES, 0.2), _rotations(rng, NUM_FRAMES, 0.2)
  jaw_t, head_t = rng.normal(size=(NUM_FRAMES, 3)), 5 * rng.normal(size=(NUM_FRAMES, 3))
  frames = np.repeat(actor.neutral[None], NUM_FRAMES, 0)
  result = {'frames': frames, 'jaw_rotation': jaw_r, 'jaw_translation': jaw_t,
            'head_rotation': head_r, 'head_translation': head_t, 'codes': np.zeros(3)}
  out = fit_run.write_usd(str(tmp_path / 'head.usdc'),
                          model_dir_lib.load_fit_model(model['dir'], actor), result, None)
  stage, pivot = _open(out), model['pivot']
  for j in range(NUM_FRAMES):
    jaw = rigid_np.rigid_about_pivot(actor.mandible.vertices, jaw_r[j], jaw_t[j], pivot)
    want = rigid_np.rigid_about_pivot(jaw, head_r[j], head_t[j], pivot)
    np.testing.assert_allclose(_world(stage, '/Performance/JawPivot/Mandible', Usd.TimeCode(j)),
                               want, atol=1e-3)
    skull = rigid_np.rigid_about_pivot(actor.skull.vertices, head_r[j], head_t[j], pivot)
    np.testing.assert_allclose(_world(stage, '/Performance/Skull', Usd.TimeCode(j)), skull,
                               atol=1e-3)
  assert not UsdGeom.PrimvarsAPI(stage.GetPrimAtPath('/Performance/Skin')).HasPrimvar('error')


def test_gbs_and_retargeting_outputs(model, fit_dir, tmp_path):
  out = str(tmp_path / 'gbs.usdc')
  export_usd.export_performance(fit_dir['dir'], out, 'gbs', model['dir'], log=None)
  stage = _open(out)
  for j in (0, NUM_FRAMES - 1):  # No jaw in a GBS fit: the mandible stays at the neutral.
    np.testing.assert_allclose(_world(stage, '/Performance/JawPivot/Mandible', Usd.TimeCode(j)),
                               model['actor'].mandible.vertices, atol=1e-5)
  # A retargeting workdir: its report names the (target) model; delta transfer has no jaw.
  retarget = tmp_path / 'retarget'
  retarget.mkdir()
  with np.load(os.path.join(fit_dir['dir'], 'aim', 'fit.npz')) as fit:
    np.savez(retarget / 'target_performance.npz', frames=fit['frames'] / 10.0, units='cm',
             jaw_rotation=fit['jaw_rotation'], jaw_translation=fit['jaw_translation'] / 10.0,
             delta_transfer_frames=(fit['frames'] + 1.0) / 10.0)
  (retarget / 'report.json').write_text(json.dumps({'target_model': model['dir']}))
  for method, frames in (('aim', fit_dir['frames']), ('delta_transfer', fit_dir['frames'] + 1)):
    out = str(tmp_path / f'{method}.usdc')
    export_usd.export_performance(str(retarget), out, method, log=None)
    stage = _open(out)
    skin = UsdGeom.Mesh(stage.GetPrimAtPath('/Performance/Skin'))
    np.testing.assert_allclose(np.asarray(skin.GetPointsAttr().Get(Usd.TimeCode(2))), frames[2],
                               atol=1e-4)
  truth = fit_dir['truth']
  want = rigid_np.rigid_about_pivot(model['actor'].mandible.vertices, truth.jaw_rotation[3],
                                    truth.jaw_translation[3], model['pivot'])
  np.testing.assert_allclose(_world(_open(str(tmp_path / 'aim.usdc')),
                                    '/Performance/JawPivot/Mandible', Usd.TimeCode(3)), want,
                             atol=1e-3)


def _bad_inputs(tmp_path, model, fit_dir):
  """(fit path, method, ground truth, text the one-line error must hold) of bad inputs."""
  garbage = tmp_path / 'garbage.npz'
  garbage.write_bytes(b'not a zip file')
  few = tmp_path / 'few.npz'
  np.savez(few, frames=np.zeros((3, 17, 3), np.float32))
  jaw = tmp_path / 'jaw.npz'
  v = model['actor'].num_vertices
  np.savez(jaw, frames=np.zeros((3, v, 3)), jaw_rotation=np.zeros((2, 3, 3)),
           jaw_translation=np.zeros((2, 3)))
  nan = tmp_path / 'nan.npz'
  np.savez(nan, frames=np.full((3, v, 3), np.nan))
  truth = tmp_path / 'truth.npz'
  np.savez(truth, frames=np.zeros((NUM_FRAMES + 1, v, 3)))
  return [(str(tmp_path / 'missing'), 'aim', None, 'no such fit directory'),
          (fit_dir['dir'], 'aim_global', None, 'holds fits of aim, gbs'),
          (str(garbage), 'aim', None, 'not a readable npz'),
          (str(few), 'aim', None, 'frames have 17 vertices but the model'),
          (str(jaw), 'aim', None, 'jaw_rotation (2, 3, 3)'),
          (str(nan), 'aim', None, 'NaN'),
          (fit_dir['dir'], 'aim', str(truth), 'ground truth frames have shape')]


def test_bad_input_writes_nothing_and_keeps_the_old_file(model, fit_dir, tmp_path):
  out = tmp_path / 'out' / 'kept.usdc'
  out.parent.mkdir()
  out.write_bytes(b'an earlier export')
  before = _digest(out)
  for path, method, truth, message in _bad_inputs(tmp_path, model, fit_dir):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
      export_usd.export_performance(path, str(out), method, model['dir'], truth, log=None)
    assert '\n' not in str(err.value)
    assert path in str(err.value) or (truth and truth in str(err.value))
  with pytest.raises(ValueError, match='must end in'):
    export_usd.export_model(model['dir'], str(tmp_path / 'model.obj'), log=None)
  with pytest.raises(FileNotFoundError, match='not a model directory'):
    export_usd.export_model(fit_dir['dir'], str(out), log=None)
  with pytest.raises(ValueError, match='--model_dir'):
    export_usd.export_performance(fit_dir['dir'], str(out), log=None)
  # A failure while writing (here the final rename) leaves the old file and no temporary one.
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(usd_export.os, 'replace', lambda *a: (_ for _ in ()).throw(OSError('full')))
    with pytest.raises(OSError, match='full'):
      export_usd.export_performance(fit_dir['dir'], str(out), 'aim', model['dir'], log=None)
  assert _digest(out) == before and os.listdir(out.parent) == ['kept.usdc']


def test_command_line_bad_input_is_one_line_and_writes_nothing(model, tmp_path):
  out = tmp_path / 'perf.usdc'
  out.write_bytes(b'an earlier export')
  bad = tmp_path / 'garbage.npz'
  bad.write_bytes(b'no')
  run = subprocess.run([sys.executable, os.path.join(REPO, 'experiments', 'export_usd.py'),
                        f'--fit_dir={bad}', f'--model_dir={model["dir"]}', f'--out={out}'],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
  assert run.returncode != 0
  assert run.stderr.strip().splitlines()[-1].startswith(f'error: {bad}: not a readable npz')
  assert out.read_bytes() == b'an earlier export'
  assert sorted(os.listdir(tmp_path)) == ['garbage.npz', 'perf.usdc']


def test_learning_and_fitting_write_usd(model, tmp_path, monkeypatch):
  workdir = str(tmp_path / 'learned')
  shutil.copytree(model['dir'], workdir)
  config = learn_test.get_config()
  config.train.num_steps = 1  # The checkpoint's step: nothing left to learn.
  loaded = model_dir_lib.load_model(workdir)
  # Learning itself is tested elsewhere (tests/test_learning.py, tests/end_to_end/).
  monkeypatch.setattr(learn_run.learning, 'train',
                      lambda *a, **k: (loaded.params, loaded.spec, []))
  learn_run.learn_and_evaluate(config, model['actor'], workdir, log=None, usd=True)
  stage = _open(os.path.join(workdir, 'model.usdc'))
  np.testing.assert_allclose(
      np.asarray(UsdGeom.Mesh(stage.GetPrimAtPath('/Model/Skin')).GetPointsAttr().Get()),
      model['fields']['shapes'][0], atol=1e-5)

  config = fit_test.get_config()
  config.methods = 'gbs'
  config.synthetic.num_frames = NUM_FRAMES
  config.output.update(meshes=False, render=False)
  fit_model = model_dir_lib.load_fit_model(model['dir'], model['actor'])
  targets, truth = methods.synthetic_sequence_targets(config, model['actor'])
  report = fit_run.fit_and_report(config, fit_model, targets, truth, str(tmp_path / 'fit'),
                                  log=None, usd_fps=12.0)
  path = str(tmp_path / 'fit' / 'gbs' / 'performance.usdc')
  assert usd_export.check_file(path) == []
  stage = _open(path)
  assert stage.GetTimeCodesPerSecond() == 12
  mean = UsdGeom.PrimvarsAPI(stage.GetPrimAtPath('/Performance/Skin')).GetPrimvar('meanError')
  per_frame = [mean.Get(Usd.TimeCode(j)) for j in range(NUM_FRAMES)]
  assert np.mean(per_frame) == pytest.approx(report['error_mm']['gbs']['mean'], rel=1e-4)


def test_editing_writes_the_edited_model(model, tmp_path):
  config = edit_config.get_config()
  config.region.center_vertex = int(np.argmax(model['actor'].neutral[:, 0]))
  config.region.radius_mm = 12.0
  config.output.update(meshes=False, render=False)
  out = str(tmp_path / 'edited')
  edit_run.run_edit(config, model['dir'], out, log=None, usd=True)
  hook = os.path.join(out, 'model.usdc')
  exported = export_usd.export_model(out, str(tmp_path / 'edited.usdc'), log=None)
  thickness = [usd_export.read_primvar(p, '/Model/Skin', 'thickness') for p in (hook, exported)]
  np.testing.assert_allclose(thickness[0], thickness[1], atol=1e-5)
  assert np.abs(thickness[0] - model['fields']['thickness']).max() > 0.5  # The edit is in it.
  skins = [usd_export.read_meshes(p)['/Model/Skin'].vertices for p in (hook, exported)]
  np.testing.assert_allclose(skins[0], skins[1], atol=1e-5)


def test_without_usd_core_runs_stop_before_starting(model, tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'pxr', None)  # `from pxr import ...` raises ImportError.
  workdir = tmp_path / 'never'
  with pytest.raises(usd_export.UsdExportError, match=r"usd-core is not installed: pip install"):
    learn_run.learn_and_evaluate(learn_test.get_config(), model['actor'], str(workdir), log=None,
                                 usd=True)
  with pytest.raises(usd_export.UsdExportError, match='usd-core is not installed'):
    fit_run.run_fit(fit_test.get_config(), model['dir'], 'synthetic', str(workdir), log=None,
                    usd_fps=30.0)
  with pytest.raises(usd_export.UsdExportError, match='usd-core is not installed'):
    edit_run.run_edit(edit_config.get_config(), model['dir'], str(workdir), log=None, usd=True)
  assert not workdir.exists()
  with pytest.raises(usd_export.UsdExportError, match='usd-core is not installed'):
    export_usd.export_model(model['dir'], str(tmp_path / 'm.usdc'), log=None)
