"""ICT-FaceKit actors: identities, learning shapes and held-out performances (DESIGN.md section 2).

The ICT-FaceKit "light" model (MIT; github.com/ICT-VGL/ICT-FaceKit) is a full head (26,719
vertices: face, head and neck, mouth socket, teeth, eyeballs ...) in **centimetres**, axes +x the
subject's left, +y up, +z forward, with
- an identity PCA: 100 modes already scaled by their standard deviation (the official sampler
  draws coefficients ~ N(0, 1)), and
- 53 ARKit-style expression blendshapes, additive deltas (shape = neutral + sum_i w_i delta_i).

`load_ict_model` reads it from either the repacked `ict_facekit_light.npz` or the original
`FaceXModel` folder of OBJs (generic_neutral_mesh.obj, identity000.obj ..., one OBJ per expression
named as in vertex_indices.json), converting to millimetres. Everything after that is in mm.

An ICT actor's skin is one region of the head (`REGIONS`, e.g. 'narrow_face' = vertices
0..6705, 'face' = 0..9408), with the head's triangles that lie wholly inside it. The ICT shapes
move the lower teeth rigidly with the jaw blendshapes, so a Procrustes (Kabsch) fit of the lower
teeth of a shape to the neutral's gives the ground-truth jaw transform (`jaw_transform`),
expressed about the actor's pivot like `GroundTruth.jaw_rotation` / `jaw_translation`:
a mandible point p moves to R (p - pivot) + pivot + t.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, Optional, Sequence

import numpy as np

from aim_jax import mesh_io, rigid_np
from aim_jax.data import synthetic_head, synthetic_performance
from aim_jax.data.actor import ActorError

CM_TO_MM = 10.0
NUM_EXPRESSIONS = 53  # The model's expression list (vertex_indices.json 'expressions').
# Vertex ranges [start, stop) of the head's parts, from the ICT-FaceKit README's geometry table.
REGIONS = {
    'face': (0, 9409),
    'narrow_face': (0, 6706),
    'head_neck': (9409, 11248),
    'mouth_socket': (11248, 13294),
    'eye_socket_left': (13294, 13678),
    'eye_socket_right': (13678, 14062),
    'gums_tongue': (14062, 17039),
    'teeth': (17039, 21451),
    'teeth_upper': (17039, 19247),
    'teeth_lower': (19247, 21451),
    'eyeball_left': (21451, 23021),
    'eyeball_right': (23021, 24591),
}
NEUTRAL_OBJ = 'generic_neutral_mesh.obj'
INDICES_JSON = 'vertex_indices.json'


@dataclasses.dataclass(frozen=True)
class IctModel:
  """The ICT-FaceKit head model in millimetres.

  Attributes:
    neutral: (N, 3) float32 mm generic neutral head.
    triangles: (F, 3) int32 triangles of the head (quads split (0,1,2) + (0,2,3)).
    expression_names: E names (the model's 53 expressions first, then any extra ones).
    expression_deltas: (E, N, 3) float32 mm additive expression deltas.
    identity_deltas: (K, N, 3) float32 mm identity modes, scaled by their standard deviation.
    landmarks: (68,) int vertex ids of the Multi-PIE 68 landmarks.
    source: the file or folder read, for messages.
  """
  neutral: np.ndarray
  triangles: np.ndarray
  expression_names: tuple
  expression_deltas: np.ndarray
  identity_deltas: np.ndarray
  landmarks: np.ndarray
  source: str = ''

  @property
  def num_vertices(self) -> int:
    return int(self.neutral.shape[0])

  def expression_index(self, name: str) -> int:
    """Index of an expression by name; ActorError naming the model if unknown."""
    try:
      return self.expression_names.index(name)
    except ValueError:
      raise ActorError(f'{self.source or "ICT model"}: unknown expression {name!r}; known: '
                       f'{", ".join(self.expression_names[:NUM_EXPRESSIONS])}') from None


# ---------------------------------------------------------------------------------------------
# Loading.


def _load_npz(file: str, num_identity_modes: Optional[int]) -> IctModel:
  try:
    with np.load(file, allow_pickle=False) as data:
      identity = data['identity_deltas']
      if num_identity_modes is not None:
        identity = identity[:num_identity_modes]
      return IctModel(
          neutral=(data['neutral'] * CM_TO_MM).astype(np.float32),
          triangles=data['triangles'].astype(np.int32),
          expression_names=tuple(str(n) for n in data['expression_names']),
          expression_deltas=(data['expression_deltas'] * CM_TO_MM).astype(np.float32),
          identity_deltas=(identity * CM_TO_MM).astype(np.float32),
          landmarks=data['landmarks_multipie68'].astype(np.int32), source=file)
  except (OSError, ValueError, KeyError, EOFError) as err:
    raise ActorError(f'{file}: not a readable ICT-FaceKit npz ({type(err).__name__}: '
                     f'{" ".join(str(err).split())})') from err


def _load_folder(path: str, num_identity_modes: Optional[int]) -> IctModel:
  """Reads the original FaceXModel folder of OBJs (cm) into mm."""
  indices_file = os.path.join(path, INDICES_JSON)
  try:
    with open(indices_file, encoding='utf-8') as f:
      indices = json.load(f)
    names = [str(n) for n in indices['expressions']]
    landmarks = np.asarray(indices['idx_to_landmark_verts'], np.int32)
  except (OSError, ValueError, KeyError) as err:
    raise ActorError(f'{indices_file}: cannot read the expression list ({type(err).__name__}: '
                     f'{" ".join(str(err).split())})') from err
  neutral_file = os.path.join(path, NEUTRAL_OBJ)
  if not os.path.isfile(neutral_file):
    raise ActorError(f'{neutral_file}: missing (the ICT-FaceKit generic neutral)')
  neutral, triangles = mesh_io.read_mesh(neutral_file, CM_TO_MM)

  def read(file):
    if not os.path.isfile(file):
      raise ActorError(f'{file}: missing')
    vertices, _ = mesh_io.read_mesh(file, CM_TO_MM)
    if vertices.shape != neutral.shape:
      raise ActorError(f'{file}: {vertices.shape[0]} vertices, the neutral has '
                       f'{neutral.shape[0]}')
    return vertices - neutral

  expressions = np.stack([read(os.path.join(path, n + '.obj')) for n in names])
  identities = []
  while num_identity_modes is None or len(identities) < num_identity_modes:
    file = os.path.join(path, f'identity{len(identities):03d}.obj')
    if not os.path.isfile(file):
      if num_identity_modes is not None or not identities:
        raise ActorError(f'{file}: missing (identity modes are identity000.obj, ...)')
      break
    identities.append(read(file))
  return IctModel(neutral=neutral.astype(np.float32), triangles=triangles.astype(np.int32),
                  expression_names=tuple(names),
                  expression_deltas=expressions.astype(np.float32),
                  identity_deltas=np.stack(identities).astype(np.float32),
                  landmarks=landmarks, source=path)


def load_ict_model(path: str, num_identity_modes: Optional[int] = None) -> IctModel:
  """Loads the ICT-FaceKit model in mm from the repacked npz or a FaceXModel folder of OBJs.

  Args:
    path: `ict_facekit_light.npz`, or the folder holding generic_neutral_mesh.obj,
      identity000.obj ..., the expression OBJs and vertex_indices.json.
    num_identity_modes: keep the first K identity modes (all when None).
  Raises:
    ActorError: one line '<file>: <problem>' for a missing or unreadable file.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise ActorError(f'{path}: no such ICT-FaceKit file or folder (give the '
                     'ict_facekit_light.npz or the FaceXModel folder)')
  if os.path.isdir(path):
    return _load_folder(path, num_identity_modes)
  return _load_npz(path, num_identity_modes)


# ---------------------------------------------------------------------------------------------
# Identities, shapes, regions.


def identity_coefficients(model: IctModel, seed: int, num_modes: Optional[int] = None
                          ) -> np.ndarray:
  """(K,) identity coefficients ~ N(0, 1) from `seed` (the official sampler's distribution).

  Only the first `num_modes` are drawn (the rest are 0); all when None.
  """
  count = model.identity_deltas.shape[0]
  coefficients = np.zeros(count)
  num = count if num_modes is None else min(int(num_modes), count)
  coefficients[:num] = np.random.default_rng(seed).standard_normal(num)
  return coefficients


def identity_neutral(model: IctModel, coefficients: Sequence[float]) -> np.ndarray:
  """(N, 3) float64 mm neutral head of an identity: neutral + sum_k c_k identity_k.

  Args:
    coefficients: up to K coefficients (missing ones are 0).
  Raises:
    ActorError: more coefficients than identity modes, or non-finite ones.
  """
  coefficients = np.asarray(coefficients, np.float64).ravel()
  count = model.identity_deltas.shape[0]
  if coefficients.size > count or not np.isfinite(coefficients).all():
    raise ActorError(f'{model.source or "ICT model"}: need at most {count} finite identity '
                     f'coefficients, got {coefficients.size}')
  neutral = np.asarray(model.neutral, np.float64)
  return neutral + np.einsum('k,kni->ni', coefficients,
                             model.identity_deltas[:coefficients.size].astype(np.float64))


def expression_weights(model: IctModel, named: Dict[str, float]) -> np.ndarray:
  """(E,) weight vector from {expression name: weight}; ActorError on an unknown name."""
  weights = np.zeros(len(model.expression_names))
  for name, value in named.items():
    weights[model.expression_index(name)] = value
  return weights


def blend(model: IctModel, head: np.ndarray, weights: np.ndarray,
          vertex_ids: Optional[np.ndarray] = None) -> np.ndarray:
  """Shapes head + sum_i w_i delta_i.

  Args:
    head: (N, 3) mm identity neutral.
    weights: (E,) or (T, E) expression weights.
    vertex_ids: restrict to these vertices (all when None).
  Returns:
    (N', 3) or (T, N', 3) float64 mm.
  """
  weights = np.asarray(weights, np.float64)
  deltas = model.expression_deltas
  if vertex_ids is not None:
    head, deltas = head[vertex_ids], deltas[:, vertex_ids]
  return head + np.einsum('...e,eni->...ni', weights, deltas.astype(np.float64))


def region_ids(name: str) -> np.ndarray:
  """(V,) int vertex ids of a named region (`REGIONS`); ActorError if unknown."""
  if name not in REGIONS:
    raise ActorError(f'ICT region {name!r} unknown; known: {", ".join(REGIONS)}')
  start, stop = REGIONS[name]
  return np.arange(start, stop)


def region_triangles(triangles: np.ndarray, vertex_ids: np.ndarray) -> np.ndarray:
  """(F', 3) int32 triangles lying wholly on `vertex_ids`, re-indexed into that list.

  Args:
    triangles: (F, 3) triangles of the whole head.
    vertex_ids: (V,) distinct vertex ids of the region, in the order the region keeps them.
  """
  lookup = -np.ones(int(max(triangles.max(), vertex_ids.max())) + 1, np.int64)
  lookup[vertex_ids] = np.arange(vertex_ids.size)
  local = lookup[triangles]
  return local[(local >= 0).all(axis=1)].astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Jaw ground truth.


def jaw_transform(neutral_teeth: np.ndarray, moved_teeth: np.ndarray, pivot: np.ndarray
                  ) -> tuple:
  """The jaw transform (about `pivot`) that best moves the neutral's lower teeth to a shape's.

  Args:
    neutral_teeth, moved_teeth: (..., N, 3) mm lower-teeth vertices (leading axes batched).
    pivot: (3,) mm.
  Returns:
    rotation (..., 3, 3) and translation (..., 3) mm with moved ~ R (x - pivot) + pivot + t.
  """
  moved = np.asarray(moved_teeth, np.float64)
  batch = moved.shape[:-2]
  moved = moved.reshape((-1,) + moved.shape[-2:])
  source = np.broadcast_to(np.asarray(neutral_teeth, np.float64), moved.shape)
  pivot = np.asarray(pivot, np.float64)
  rotations, translations = [], []
  for src, dst in zip(source, moved):
    rotation, offset = rigid_np.kabsch(src, dst)
    rotations.append(rotation)
    translations.append(offset + rotation @ pivot - pivot)
  return (np.stack(rotations).reshape(batch + (3, 3)),
          np.stack(translations).reshape(batch + (3,)))


# ---------------------------------------------------------------------------------------------
# The held-out performance.

# Expressions that are corrections of another, not to be used alone: (corrective, base).
_CORRECTIVES = (('mouthClose', 'jawOpen'),)


def performance_weights(model: IctModel, num_frames: int, seed: int, activity: float = 0.3,
                        max_weight: float = 1.0, jaw_max_weight: float = 0.0) -> np.ndarray:
  """(T, 53) smooth seeded expression weights in [0, max_weight] mixing every ICT expression.

  Each expression follows a smooth random curve (`synthetic_performance.smooth_curves`, periods
  80-240 frames: at most ~0.2 weight and ~5 mm of eyelid travel per frame) shifted down so it is
  active (> 0) about `activity` of the time and eased with a smoothstep. Correctives
  (mouthClose) never exceed their base expression's weight (jawOpen), as the model expects.

  The jaw: with `jaw_max_weight` 0, jawOpen is one more curve, active twice as often as the
  others. With `jaw_max_weight` > 0 it is a separate track, as in speech and acting: its own
  smooth curve (periods 20-80 frames) mapped to [0, jaw_max_weight] and open about 3/4 of the
  time (jawOpen 1.0 opens ICT jaws about 25 deg, so 0.75 reaches ~19 deg, ~10 deg on average).
  Sparse activations, a few expressions at a time, come from a low `activity` (0.1: ~5 of 53).
  """
  names = model.expression_names[:NUM_EXPRESSIONS]
  rng = np.random.default_rng(seed)
  curves = synthetic_performance.smooth_curves(rng, num_frames, len(names), min_period=80.0,
                                               max_period=240.0)
  active = np.full(len(names), float(activity))
  jaw = names.index('jawOpen')
  active[jaw] = min(1.0, 2.0 * activity)
  level = np.clip((curves + 2.0 * active - 1.0) / (2.0 * active), 0.0, 1.0)
  weights = max_weight * synthetic_head.smoothstep(level)
  if jaw_max_weight > 0:
    track = synthetic_performance.smooth_curves(rng, num_frames, 1, min_period=20.0,
                                                max_period=80.0)[:, 0]
    weights[:, jaw] = jaw_max_weight * synthetic_head.smoothstep(np.clip((track + 1.0) / 2.0,
                                                                         0.0, 1.0))
  for corrective, base in _CORRECTIVES:
    i, j = names.index(corrective), names.index(base)
    weights[:, i] = np.minimum(weights[:, i], weights[:, j])
  return weights


def make_performance(model: IctModel, head: np.ndarray, vertex_ids: np.ndarray,
                     pivot: np.ndarray, num_frames: int = 120, seed: int = 1,
                     activity: float = 0.3, jaw_max_weight: float = 0.0,
                     max_weight: float = 1.0) -> synthetic_performance.Performance:
  """A held-out ICT performance: smooth mixes of all 53 expressions, with jaw ground truth.

  The learning shapes are single expressions at weight 1; these frames mix several at once, at
  intermediate weights, including expressions outside the learning set.

  Args:
    model: the ICT model.
    head: (N, 3) mm identity neutral (whole head).
    vertex_ids: (V,) the actor's skin vertices (frames are returned for these).
    pivot: (3,) mm the actor's jaw pivot.
    num_frames: T.
    seed: same seed, same performance.
    activity: about how often each expression is active.
    jaw_max_weight: > 0 gives jawOpen its own track up to this weight (`performance_weights`).
    max_weight: the other expressions' largest weight.
  Returns:
    `synthetic_performance.Performance` with frames (T, V, 3) float32 mm, jaw ground truth from
    the lower teeth (Kabsch, about `pivot`), weights (T, 53) and control_names the 53 expression
    names.
  """
  if num_frames < 2:
    raise ValueError(f'num_frames must be >= 2, got {num_frames}')
  weights = performance_weights(model, num_frames, seed, activity, max_weight, jaw_max_weight)
  full = np.zeros((num_frames, len(model.expression_names)))
  full[:, :NUM_EXPRESSIONS] = weights
  frames = blend(model, head, full, vertex_ids)
  teeth = region_ids('teeth_lower')
  rotation, translation = jaw_transform(head[teeth], blend(model, head, full, teeth), pivot)
  return synthetic_performance.Performance(
      frames=frames.astype(np.float32), jaw_rotation=rotation.astype(np.float32),
      jaw_translation=translation.astype(np.float32), weights=weights.astype(np.float32),
      control_names=tuple(model.expression_names[:NUM_EXPRESSIONS]))
