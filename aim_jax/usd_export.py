"""USD export of a learned model and of a fitted performance (usd-core: pip install -e '.[usd]').

Stage metadata: metersPerUnit 0.001 (every length is in mm, as everywhere in the project),
upAxis Y (the project's axes: +x the subject's left, +y up, +z forward), a default prim, and
timeCodesPerSecond = framesPerSecond with start and end time codes. Every mesh is a triangle
`UsdGeom.Mesh` with subdivisionScheme 'none' (a scan, not a subdivision cage), counter-clockwise
front faces (orientation rightHanded) and an authored extent.

A learned model (`write_model`, default prim /Model):
  /Model/Skin                 the reconstructed neutral (shape 0) at the default time; primvars
                              (vertex interpolation, at the neutral's vertices, what
                              `aim.evaluate_chunked` gives the learning outputs):
                                thickness (float, mm), jawSkinning (float, 0..1),
                                anatomyNormal (vector3f, unit), reconstructionError (float, mm,
                                mean over the learning shapes), shapeError (float, mm,
                                time-sampled: the error of the shape shown)
  /Model/Anatomy              the learned anatomy surface: bone points B at the neutral's
                              vertices, the skin's triangles
  /Model/Skull                the actor's cranium
  /Model/JawPivot             Xform: the jaw transform about the pivot (see below)
  /Model/JawPivot/Mandible    the actor's mandible in the neutral pose (model coordinates)
The learning shapes are a time-sampled preview: time code i holds shape i (Skin points and the
learned jaw transform T_i on JawPivot; time 0 is the neutral), `aim:shapeNames` on /Model/Skin
names them. Not UsdSkel blend shapes: a blend shape is a linear offset, which cannot carry the
jaw's rotation of the mandible and the skinned skin, and it needs a SkelRoot, a Skeleton and a
SkelAnimation binding that many readers do not evaluate; time samples of points and of an Xform
are read and played by every USD reader (the shapes are exact at integer time codes; between
them readers interpolate the points linearly and the jaw rotation spherically).

A performance (`write_performance`, default prim /Performance): the same prim names, /Skin with
one time sample of points (and extent) per frame (topology once), /JawPivot time-sampled from
the fitted jaw, /Skull static (time-sampled too when the fit has a head pose), and with ground
truth the primvars error (float, mm, vertex, per frame) and meanError (float, mm, constant, per
frame, over the actor's face region). Frame j is time code j.

The jaw convention is the project's (`rigid_np.rigid_about_pivot`): a mandible point p moves to
R (p - c) + c + t about the pivot c. JawPivot carries the standard pivot op stack
  xformOp:translate (t), xformOp:translate:pivot (c), xformOp:orient (R as a quaternion),
  !invert!xformOp:translate:pivot
which is exactly that map. With a fitted head pose H (applied after the jaw, about the same
pivot), JawPivot holds H composed with the jaw and /Skull holds H.

Writes are atomic: the stage is built in memory, exported to a temporary file beside the target
and renamed over it, so a failed export leaves no partial file and an existing file untouched.
The format follows the extension: .usdc (crate, the default) or .usda (text); .usd is crate.
"""

from __future__ import annotations

import os
import types
from typing import Dict, List, Optional

import numpy as np

from aim_jax import eval as eval_lib
from aim_jax.data.actor import Actor, Mesh

MISSING = "usd-core is not installed: pip install -e '.[usd]'"
EXTENSIONS = ('.usdc', '.usda', '.usd')
DEFAULT_FPS = 30.0          # The project records no frame rate; 30 unless told.
SHAPES_PER_SECOND = 2.0     # Playback rate of a model's learning-shape preview.
MODEL_ROOT = '/Model'
PERFORMANCE_ROOT = '/Performance'


class UsdExportError(ValueError):
  """Input that cannot be exported, or usd-core missing; the message is one line naming the file
  and the problem."""


def require_usd():
  """The pxr modules used here, as a namespace; UsdExportError(MISSING) without usd-core."""
  try:
    from pxr import Gf, Sdf, Usd, UsdGeom, Vt
  except ImportError:
    raise UsdExportError(MISSING) from None
  return types.SimpleNamespace(Gf=Gf, Sdf=Sdf, Usd=Usd, UsdGeom=UsdGeom, Vt=Vt)


def check_out_path(path: str) -> str:
  """`path` when its extension is a USD layer's (.usdc, .usda, .usd), else UsdExportError."""
  if not path or os.path.splitext(path)[1].lower() not in EXTENSIONS:
    raise UsdExportError(f'{path}: the output must end in {", ".join(EXTENSIONS)}')
  if os.path.isdir(path):
    raise UsdExportError(f'{path}: is a folder; give the output file')
  return path


# ---------------------------------------------------------------------------------------------
# Maths (pure numpy).


def quaternions(rotation: np.ndarray) -> np.ndarray:
  """Unit quaternions (w, x, y, z), w >= 0, of rotations R (..., 3, 3) acting as R p.

  Shepperd's method, float64 (the nearest rotation's quaternion for slightly non-orthonormal R).
  """
  r = np.asarray(rotation, np.float64)
  m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
  candidates = np.stack([
      np.stack([1 + m00 + m11 + m22, r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                r[..., 1, 0] - r[..., 0, 1]], -1),
      np.stack([r[..., 2, 1] - r[..., 1, 2], 1 + m00 - m11 - m22, r[..., 0, 1] + r[..., 1, 0],
                r[..., 0, 2] + r[..., 2, 0]], -1),
      np.stack([r[..., 0, 2] - r[..., 2, 0], r[..., 0, 1] + r[..., 1, 0], 1 - m00 + m11 - m22,
                r[..., 1, 2] + r[..., 2, 1]], -1),
      np.stack([r[..., 1, 0] - r[..., 0, 1], r[..., 0, 2] + r[..., 2, 0],
                r[..., 1, 2] + r[..., 2, 1], 1 - m00 - m11 + m22], -1)], -2)  # (..., 4, 4)
  diagonal = np.stack([m00 + m11 + m22, m00, m11, m22], -1)
  best = np.argmax(diagonal, axis=-1)
  q = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
  q = q / np.linalg.norm(q, axis=-1, keepdims=True)
  return np.where(q[..., :1] < 0, -q, q)


def compose_about_pivot(outer_rotation: np.ndarray, outer_translation: np.ndarray,
                        inner_rotation: np.ndarray, inner_translation: np.ndarray) -> tuple:
  """Two rigid maps about one pivot, x -> R (x - c) + c + t, composed: outer after inner.

  Returns (R (..., 3, 3), t (..., 3) mm) with R = R_o R_i and t = R_o t_i + t_o (about the same
  pivot).
  """
  ro, ri = np.asarray(outer_rotation, np.float64), np.asarray(inner_rotation, np.float64)
  rotation = ro @ ri
  translation = (np.einsum('...ij,...j->...i', ro, np.asarray(inner_translation, np.float64))
                 + np.asarray(outer_translation, np.float64))
  return rotation, translation


def model_arrays(fields: Dict[str, np.ndarray], shapes: np.ndarray) -> Dict[str, np.ndarray]:
  """What /Model/Skin carries beside the fields: the per-vertex error of every learning shape.

  Args:
    fields: `aim.evaluate_chunked` at the neutral's vertices ('shapes' (S, V, 3) mm ...).
    shapes: (S, V, 3) mm the actor's registered learning shapes.
  Returns:
    'shape_error' (S, V) mm and 'reconstruction_error' (V,) mm, its mean over the shapes (as
    learn_outputs' neutral_error mesh).
  """
  errors = eval_lib.vertex_errors(fields['shapes'], shapes)
  return {'shape_error': errors, 'reconstruction_error': errors.mean(axis=0)}


# ---------------------------------------------------------------------------------------------
# Stage writing.


def _new_stage(pxr, root: str, start: float, end: float, rate: float, metadata: Dict):
  stage = pxr.Usd.Stage.CreateInMemory()
  pxr.UsdGeom.SetStageMetersPerUnit(stage, 0.001)
  pxr.UsdGeom.SetStageUpAxis(stage, pxr.UsdGeom.Tokens.y)
  prim = pxr.UsdGeom.Xform.Define(stage, root).GetPrim()
  stage.SetDefaultPrim(prim)
  stage.SetStartTimeCode(float(start))
  stage.SetEndTimeCode(float(end))
  stage.SetTimeCodesPerSecond(float(rate))
  stage.SetFramesPerSecond(float(rate))
  layer = stage.GetRootLayer()
  layer.documentation = 'aim_jax export (aim_jax/usd_export.py); lengths in mm'
  layer.customLayerData = {k: str(v) for k, v in metadata.items()}
  return stage


def _extent(pxr, points: np.ndarray):
  points = np.asarray(points, np.float32)
  return pxr.Vt.Vec3fArray.FromNumpy(np.stack([points.min(0), points.max(0)]))


def _define_mesh(pxr, stage, path: str, points: np.ndarray, faces: np.ndarray):
  """A triangle mesh at `path` with static points (V, 3) mm and faces (T, 3)."""
  mesh = pxr.UsdGeom.Mesh.Define(stage, path)
  faces = np.asarray(faces, np.int32)
  mesh.CreateFaceVertexCountsAttr(pxr.Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)))
  mesh.CreateFaceVertexIndicesAttr(pxr.Vt.IntArray.FromNumpy(faces.reshape(-1)))
  mesh.CreateSubdivisionSchemeAttr(pxr.UsdGeom.Tokens.none)
  mesh.CreateOrientationAttr(pxr.UsdGeom.Tokens.rightHanded)
  mesh.CreateDoubleSidedAttr(False)
  mesh.CreatePointsAttr(pxr.Vt.Vec3fArray.FromNumpy(np.asarray(points, np.float32)))
  mesh.CreateExtentAttr(_extent(pxr, points))
  return mesh


def _sample_points(pxr, mesh, frames: np.ndarray, start: int = 0):
  """Time samples start, start + 1, ... of the mesh's points and extent (frames (F, V, 3))."""
  points, extent = mesh.GetPointsAttr(), mesh.GetExtentAttr()
  frames = np.asarray(frames, np.float32)
  lo, hi = frames.min(axis=1), frames.max(axis=1)
  for j, frame in enumerate(frames):
    time = pxr.Usd.TimeCode(start + j)
    points.Set(pxr.Vt.Vec3fArray.FromNumpy(frame), time)
    extent.Set(pxr.Vt.Vec3fArray.FromNumpy(np.stack([lo[j], hi[j]])), time)


def _primvar(pxr, mesh, name: str, type_name, values: np.ndarray, doc: str,
             interpolation: Optional[str] = None, times: Optional[np.ndarray] = None):
  """A primvar (vertex interpolation unless told); `times` given: values[j] at times[j]."""
  api = pxr.UsdGeom.PrimvarsAPI(mesh)
  primvar = api.CreatePrimvar(name, type_name, interpolation or pxr.UsdGeom.Tokens.vertex)
  primvar.GetAttr().SetDocumentation(doc)
  array = (pxr.Vt.Vec3fArray if type_name == pxr.Sdf.ValueTypeNames.Vector3fArray
           else pxr.Vt.FloatArray)
  if times is None:
    primvar.Set(array.FromNumpy(np.asarray(values, np.float32)))
  else:
    for time, value in zip(times, values):
      value = np.atleast_1d(np.asarray(value, np.float32))
      primvar.Set(float(value[0]) if interpolation == pxr.UsdGeom.Tokens.constant else
                  array.FromNumpy(value), pxr.Usd.TimeCode(float(time)))
  return primvar


def _add_pivot_ops(pxr, xformable, pivot: np.ndarray, rotation: np.ndarray,
                   translation: np.ndarray, times: Optional[np.ndarray] = None):
  """Ops mapping p -> R (p - c) + c + t on a prim: translate, translate:pivot, orient, inverse
  pivot.

  rotation (F, 3, 3), translation (F, 3) mm: one sample per time in `times`, or with times None
  one static value (F = 1).
  """
  double = pxr.UsdGeom.XformOp.PrecisionDouble
  translate = xformable.AddTranslateOp(double)
  xformable.AddTranslateOp(double, 'pivot').Set(pxr.Gf.Vec3d(*np.asarray(pivot, np.float64)))
  orient = xformable.AddOrientOp(double)
  xformable.AddTranslateOp(double, 'pivot', isInverseOp=True)
  q = quaternions(rotation)
  t = np.asarray(translation, np.float64)
  samples = [pxr.Usd.TimeCode.Default()] if times is None else [
      pxr.Usd.TimeCode(float(s)) for s in times]
  for j, time in enumerate(samples):
    translate.Set(pxr.Gf.Vec3d(*t[j]), time)
    orient.Set(pxr.Gf.Quatd(float(q[j, 0]), pxr.Gf.Vec3d(*q[j, 1:])), time)


def _save(pxr, stage, path: str) -> str:
  """Exports the in-memory stage to `path` atomically (temporary file beside it, then rename)."""
  check_out_path(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  stem, ext = os.path.splitext(os.path.basename(path))
  tmp = os.path.join(folder, f'.{stem}.{os.getpid()}.tmp{ext}')
  try:
    if not stage.GetRootLayer().Export(tmp):
      raise OSError(f'{path}: USD could not write the file')
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def write_model(path: str, actor: Actor, fields: Dict[str, np.ndarray], jaw_rotation: np.ndarray,
                jaw_translation: np.ndarray, pivot: np.ndarray,
                shapes_per_second: float = SHAPES_PER_SECOND,
                metadata: Optional[Dict] = None) -> str:
  """Writes a learned model's stage (layout in the module docstring).

  Args:
    path: .usdc / .usda / .usd output (written atomically).
    actor: the actor the model was learned on (faces, bones, learning shapes, names).
    fields: `aim.evaluate_chunked` at actor.neutral: 'bone' (V, 3) mm, 'normal' (V, 3),
      'thickness' (V,) mm, 'skinning' (V,), 'shapes' (S, V, 3) mm.
    jaw_rotation: (S, 3, 3) the learned jaw rotation of each shape (`aim.jaw_transforms`);
    jaw_translation: (S, 3) mm; both about `pivot` (3,) mm.
    shapes_per_second: playback rate of the shape preview (time codes per second).
    metadata: strings for the root layer's customLayerData (source, model directory ...).
  Returns:
    `path`.
  """
  check_out_path(path)
  pxr = require_usd()
  shapes = np.asarray(fields['shapes'], np.float32)
  num_shapes = shapes.shape[0]
  if shapes.shape != actor.shapes.shape:
    raise UsdExportError(f'{path}: the model gives shapes {shapes.shape} but the actor '
                         f'{actor.name} has {actor.shapes.shape}')
  extra = model_arrays(fields, actor.shapes)
  stage = _new_stage(pxr, MODEL_ROOT, 0, num_shapes - 1, shapes_per_second,
                     {'kind': 'model', 'actor': actor.name, **(metadata or {})})
  times = np.arange(num_shapes, dtype=np.float64)
  skin = _define_mesh(pxr, stage, f'{MODEL_ROOT}/Skin', shapes[0], actor.faces)
  _sample_points(pxr, skin, shapes)
  names = skin.GetPrim().CreateAttribute('aim:shapeNames', pxr.Sdf.ValueTypeNames.StringArray,
                                         custom=True)
  names.Set(list(actor.shape_names))
  names.SetDocumentation('the learning shape at each time code (time code i: shape i)')
  f32 = pxr.Sdf.ValueTypeNames.FloatArray
  _primvar(pxr, skin, 'thickness', f32, fields['thickness'],
           'soft-tissue thickness D at the neutral, mm')
  _primvar(pxr, skin, 'jawSkinning', f32, fields['skinning'], 'jaw skinning weight K, 0..1')
  _primvar(pxr, skin, 'anatomyNormal', pxr.Sdf.ValueTypeNames.Vector3fArray, fields['normal'],
           'unit anatomy normal N (skin = B + D N)')
  _primvar(pxr, skin, 'reconstructionError', f32, extra['reconstruction_error'],
           'distance to the registered shapes, mean over the learning shapes, mm')
  _primvar(pxr, skin, 'shapeError', f32, extra['shape_error'],
           'distance of the shown shape to its registered shape, mm', times=times)
  _define_mesh(pxr, stage, f'{MODEL_ROOT}/Anatomy', fields['bone'], actor.faces)
  _define_mesh(pxr, stage, f'{MODEL_ROOT}/Skull', actor.skull.vertices, actor.skull.faces)
  jaw = pxr.UsdGeom.Xform.Define(stage, f'{MODEL_ROOT}/JawPivot')
  _add_pivot_ops(pxr, jaw, pivot, jaw_rotation, jaw_translation, times)
  _define_mesh(pxr, stage, f'{MODEL_ROOT}/JawPivot/Mandible', actor.mandible.vertices,
               actor.mandible.faces)
  return _save(pxr, stage, path)


def check_performance(performance: Dict[str, np.ndarray], num_vertices: int, where: str):
  """UsdExportError (one line naming `where`) unless the performance has frames (F, V, 3) for
  this actor's V and jaw (and head) transforms of F frames, all finite."""
  frames = performance.get('frames')
  if frames is None or frames.ndim != 3 or frames.shape[2] != 3 or frames.shape[0] < 1:
    raise UsdExportError(f'{where}: frames must be (F, V, 3), got '
                         f'{None if frames is None else frames.shape}')
  if frames.shape[1] != num_vertices:
    raise UsdExportError(f'{where}: frames have {frames.shape[1]} vertices but the model\'s '
                         f'actor has {num_vertices} (another topology)')
  num_frames = frames.shape[0]
  for prefix in ('jaw', 'head'):
    rotation = performance.get(f'{prefix}_rotation')
    translation = performance.get(f'{prefix}_translation')
    if (rotation is None) != (translation is None):
      raise UsdExportError(f'{where}: has {prefix}_rotation or {prefix}_translation without the '
                           'other')
    if rotation is None:
      continue
    if rotation.shape != (num_frames, 3, 3) or translation.shape != (num_frames, 3):
      raise UsdExportError(f'{where}: {prefix}_rotation {rotation.shape} and {prefix}_translation '
                           f'{translation.shape} must be ({num_frames}, 3, 3) and '
                           f'({num_frames}, 3) for its {num_frames} frames')
  for key, value in performance.items():
    if not np.all(np.isfinite(value)):
      raise UsdExportError(f'{where}: {key} holds NaN or infinite values')


def write_performance(path: str, actor: Actor, performance: Dict[str, np.ndarray],
                      pivot: np.ndarray, truth_frames: Optional[np.ndarray] = None,
                      fps: float = DEFAULT_FPS, metadata: Optional[Dict] = None) -> str:
  """Writes a performance's stage (layout in the module docstring).

  Args:
    path: .usdc / .usda / .usd output (written atomically).
    actor: the model's actor (faces, skull, mandible, region).
    performance: 'frames' (F, V, 3) mm; optionally 'jaw_rotation' (F, 3, 3), 'jaw_translation'
      (F, 3) mm about `pivot` (else the mandible stays at the neutral), and 'head_rotation',
      'head_translation' (a fitted rigid head pose, applied after the jaw about `pivot`).
    pivot: (3,) mm the model's jaw pivot.
    truth_frames: optional (F, V, 3) mm ground truth: the error primvars.
    fps: frames per second (timeCodesPerSecond and framesPerSecond).
    metadata: strings for the root layer's customLayerData.
  Returns:
    `path`.
  """
  check_out_path(path)
  check_performance(performance, actor.num_vertices, path)
  frames = np.asarray(performance['frames'], np.float32)
  num_frames = frames.shape[0]
  if truth_frames is not None and np.shape(truth_frames) != frames.shape:
    raise UsdExportError(f'{path}: ground truth frames {np.shape(truth_frames)} do not match the '
                         f'performance\'s {frames.shape}')
  if not fps > 0:
    raise UsdExportError(f'{path}: frames per second must be > 0, got {fps}')
  pxr = require_usd()
  stage = _new_stage(pxr, PERFORMANCE_ROOT, 0, num_frames - 1, fps,
                     {'kind': 'performance', 'actor': actor.name, **(metadata or {})})
  times = np.arange(num_frames, dtype=np.float64)
  skin = _define_mesh(pxr, stage, f'{PERFORMANCE_ROOT}/Skin', frames[0], actor.faces)
  _sample_points(pxr, skin, frames)
  if truth_frames is not None:
    error = eval_lib.vertex_errors(frames, truth_frames)
    f32 = pxr.Sdf.ValueTypeNames.FloatArray
    _primvar(pxr, skin, 'error', f32, error, 'distance to the ground truth frame, mm',
             times=times)
    _primvar(pxr, skin, 'meanError', pxr.Sdf.ValueTypeNames.Float,
             error[:, actor.region].mean(axis=1),
             'mean distance to the ground truth frame over the face region, mm',
             interpolation=pxr.UsdGeom.Tokens.constant, times=times)
  eye = np.broadcast_to(np.eye(3), (num_frames, 3, 3))
  zero = np.zeros((num_frames, 3))
  jaw = (performance.get('jaw_rotation', eye), performance.get('jaw_translation', zero))
  skull = _define_mesh(pxr, stage, f'{PERFORMANCE_ROOT}/Skull', actor.skull.vertices,
                       actor.skull.faces)
  if 'head_rotation' in performance:
    head = (performance['head_rotation'], performance['head_translation'])
    _add_pivot_ops(pxr, skull, pivot, *head, times)
    jaw = compose_about_pivot(*head, *jaw)
  sampled = 'jaw_rotation' in performance or 'head_rotation' in performance
  _add_pivot_ops(pxr, pxr.UsdGeom.Xform.Define(stage, f'{PERFORMANCE_ROOT}/JawPivot'), pivot,
                 jaw[0] if sampled else np.eye(3)[None],
                 jaw[1] if sampled else np.zeros((1, 3)), times if sampled else None)
  _define_mesh(pxr, stage, f'{PERFORMANCE_ROOT}/JawPivot/Mandible', actor.mandible.vertices,
               actor.mandible.faces)
  return _save(pxr, stage, path)


# ---------------------------------------------------------------------------------------------
# Reading back and checking.


def check_file(path: str) -> List[str]:
  """Validation errors of a USD file ('<validator>: <message>'), none when it is clean.

  usd-core >= 26 checks with UsdValidation (every registered validator); older releases with
  UsdUtils.ComplianceChecker (errors and failed checks).
  """
  pxr = require_usd()
  try:
    from pxr import UsdValidation
  except ImportError:
    from pxr import UsdUtils
    checker = UsdUtils.ComplianceChecker()
    checker.CheckCompliance(path)
    return list(checker.GetErrors()) + list(checker.GetFailedChecks())
  stage = pxr.Usd.Stage.Open(path)
  validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
  errors = UsdValidation.ValidationContext(validators).Validate(stage)
  return [f'{e.GetValidator().GetMetadata().name}: {e.GetMessage()}' for e in errors
          if e.GetType() == UsdValidation.ValidationErrorType.Error]


def fan_triangles(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
  """(T, 3) triangles of polygons given as USD face vertex counts and indices (fans)."""
  counts, indices = np.asarray(counts, np.int64), np.asarray(indices, np.int64)
  if np.all(counts == 3):
    return indices.reshape(-1, 3)
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
  first = np.repeat(starts, np.maximum(counts - 2, 0))
  within = np.concatenate([np.arange(1, n - 1) for n in counts]) if len(counts) else first
  return np.stack([indices[first], indices[first + within], indices[first + within + 1]], -1)


def read_meshes(path: str, time: Optional[float] = None) -> Dict[str, Mesh]:
  """Every mesh of a USD file in world coordinates at `time` (default: the default time), by
  prim path: points transformed by their prim's local-to-world transform, (T, 3) triangles
  (polygons fanned)."""
  pxr = require_usd()
  stage = pxr.Usd.Stage.Open(path)
  code = pxr.Usd.TimeCode.Default() if time is None else pxr.Usd.TimeCode(time)
  cache = pxr.UsdGeom.XformCache(code)
  out = {}
  for prim in stage.Traverse():
    if not prim.IsA(pxr.UsdGeom.Mesh):
      continue
    mesh = pxr.UsdGeom.Mesh(prim)
    points = np.asarray(mesh.GetPointsAttr().Get(code), np.float64)
    matrix = np.asarray(cache.GetLocalToWorldTransform(prim), np.float64)  # Row vectors.
    points = points @ matrix[:3, :3] + matrix[3, :3]
    counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get(), np.int64)
    indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get(), np.int64)
    out[str(prim.GetPath())] = Mesh(points, fan_triangles(counts, indices))
  return out


def read_primvar(path: str, prim_path: str, name: str, time: Optional[float] = None
                 ) -> Optional[np.ndarray]:
  """A primvar's value at `time` (default: the default time, falling back to the first sample)
  as numpy, or None when the prim has no such primvar."""
  pxr = require_usd()
  stage = pxr.Usd.Stage.Open(path)
  primvar = pxr.UsdGeom.PrimvarsAPI(stage.GetPrimAtPath(prim_path)).GetPrimvar(name)
  if not primvar or not primvar.HasValue():
    return None
  if time is None:
    value = primvar.Get(pxr.Usd.TimeCode.Default())
    if value is None:
      value = primvar.Get(pxr.Usd.TimeCode.EarliestTime())
  else:
    value = primvar.Get(pxr.Usd.TimeCode(time))
  return np.asarray(value)


def stage_times(path: str) -> tuple:
  """(start, end, time codes per second) of a USD file's stage."""
  pxr = require_usd()
  stage = pxr.Usd.Stage.Open(path)
  return stage.GetStartTimeCode(), stage.GetEndTimeCode(), stage.GetTimeCodesPerSecond()


def world_transforms(path: str, prim_path: str, times) -> np.ndarray:
  """(T, 4, 4) local-to-world matrices of a prim at each time, USD's row-vector convention
  (world = [p, 1] M)."""
  pxr = require_usd()
  stage = pxr.Usd.Stage.Open(path)  # Held: its prims are valid while it lives.
  xformable = pxr.UsdGeom.Xformable(stage.GetPrimAtPath(prim_path))
  return np.stack([np.asarray(xformable.ComputeLocalToWorldTransform(pxr.Usd.TimeCode(float(t))),
                              np.float64) for t in times])


def shape_names(path: str) -> List[str]:
  """A model file's learning-shape names (`aim:shapeNames` on /Model/Skin), one per time code."""
  pxr = require_usd()
  stage = pxr.Usd.Stage.Open(path)
  attribute = stage.GetPrimAtPath(f'{MODEL_ROOT}/Skin').GetAttribute('aim:shapeNames')
  return list(attribute.Get()) if attribute and attribute.HasValue() else []
