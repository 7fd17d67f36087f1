"""The AIM ensemble (supplementary Fig. 11): five MLPs on a template point plus per-shape jaws.

Queried at a template point `c` (mm, normalised to [-1, 1]^3 by a fixed affine stored in the
`AIMSpec`), the ensemble predicts
- `B(c)` bone point (mm), `N(c)` unit anatomy normal, `D(c) >= 0` soft-tissue thickness (mm),
- `K(c)` in [0, 1] jaw skinning weight, `E(c)` (S-1, 3) expression deltas (mm),
and with learned per-shape jaw transforms `T_i` (6D rotation + translation about the pivot,
identity at start, T_0 = identity) reconstructs every shape:
  s0 = B + D N;  s_i = (1 - k) s0 + k (R_i (s0 - p) + p + t_i) + e_i.

Parameters are a plain pytree `{'bone', 'normal', 'thickness', 'skinning', 'expression': MLP
params, 'jaw': {'rot6d': (S-1, 6), 'translation': (S-1, 3)}}`; every function here is pure.
An edited model (aim_jax/edit.py) also has an `edit`, passed beside the params (never inside
them: it is not trained): a list of analytic operations (`edit_field`) that rewrite B and D
wherever the model is queried, so the neutral and every shape regenerate consistently.

Output squashing (config fields): B = c_mm + bone_scale * raw (an offset from the query point, so
an untrained B starts near the skin); D = thickness_scale * softplus(raw); K = sigmoid(raw);
N = raw / |raw| with raw biased toward the outward direction; E = delta_scale * raw.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from aim_jax import geometry
from aim_jax.models import edit_field, siren

NETWORKS = ('bone', 'normal', 'thickness', 'skinning', 'expression')
ANATOMY_NETWORKS = ('bone', 'normal', 'thickness', 'skinning')
LAYOUTS = ('loop', 'stacked')


@dataclasses.dataclass(frozen=True)
class AIMSpec:
  """Static description of an AIM model (hashable, so it can be a jit static argument).

  Attributes:
    num_shapes: S, the neutral included.
    center: (3,) mm, the normalisation centre (tuple).
    scale: mm per normalised unit: c_norm = (c_mm - center) / scale.
    pivot: (3,) mm jaw pivot (tuple).
    hidden, depth, activation, w0, sine: MLP fields shared by all five networks (MLPSpec).
    anatomy_activation, anatomy_w0: the four anatomy networks' (B, N, D, K) own activation and
      sine frequency ('' / 0: the shared ones); the expression network E keeps the shared ones.
      Not in the paper: a smoother anatomy between the sparse constraints (issue 11).
    expression_hidden: hidden width of E (0: same as `hidden`).
    bone_scale: mm per unit of B's raw output.
    thickness_scale: mm per unit of D's softplus output.
    delta_scale: mm per unit of E's raw output.
    layout: 'loop' evaluates the networks one after the other; 'stacked' vmaps the four anatomy
      networks over stacked weights (outputs padded to 3). Same numbers, different speed.
  """
  num_shapes: int
  center: Tuple[float, float, float]
  scale: float
  pivot: Tuple[float, float, float]
  hidden: int = 256
  depth: int = 3
  activation: str = 'sine'
  w0: float = 30.0
  sine: str = 'poly'
  expression_hidden: int = 0
  bone_scale: float = 10.0
  thickness_scale: float = 10.0
  delta_scale: float = 10.0
  layout: str = 'loop'
  anatomy_activation: str = ''
  anatomy_w0: float = 0.0

  def __post_init__(self):
    if self.num_shapes < 2:
      raise ValueError(f'num_shapes must be >= 2, got {self.num_shapes}')
    if self.layout not in LAYOUTS:
      raise ValueError(f'layout must be one of {LAYOUTS}, got {self.layout!r}')
    for name in NETWORKS:  # Checks every network's settings (activation, sizes) now.
      self.mlp(name)

  def mlp(self, name: str) -> siren.MLPSpec:
    out = {'bone': 3, 'normal': 3, 'thickness': 1, 'skinning': 1,
           'expression': 3 * (self.num_shapes - 1)}[name]
    hidden = self.expression_hidden if (name == 'expression' and self.expression_hidden) else (
        self.hidden)
    anatomy = name != 'expression'
    activation = (self.anatomy_activation or self.activation) if anatomy else self.activation
    w0 = (self.anatomy_w0 or self.w0) if anatomy else self.w0
    return siren.MLPSpec(in_features=3, out_features=out, hidden=hidden, depth=self.depth,
                         activation=activation, w0=w0, sine=self.sine)


def make_spec(template: np.ndarray, pivot: np.ndarray, num_shapes: int, margin: float = 1.1,
              **fields) -> AIMSpec:
  """An AIMSpec whose normalisation maps the template's bounding box into [-1, 1]^3.

  Args:
    template: (V, 3) mm neutral.
    pivot: (3,) mm.
    margin: the half-extent of the longest axis, times this, is the scale.
  """
  lo, hi = template.min(axis=0), template.max(axis=0)
  center = 0.5 * (lo + hi)
  scale = float(0.5 * np.max(hi - lo) * margin)
  return AIMSpec(num_shapes=num_shapes, center=tuple(float(x) for x in center), scale=scale,
                 pivot=tuple(float(x) for x in pivot), **fields)


def init(rng: jax.Array, spec: AIMSpec) -> Dict:
  """Initialises all parameters; jaws start at the identity."""
  keys = jax.random.split(rng, len(NETWORKS))
  params = {name: siren.init(key, spec.mlp(name)) for name, key in zip(NETWORKS, keys)}
  # Anatomy normals start pointing outward (+z, toward the viewer) rather than at random.
  params['normal'][-1]['b'] = params['normal'][-1]['b'] + jnp.array([0.0, 0.0, 1.0])
  params['jaw'] = {
      'rot6d': jnp.tile(jnp.asarray(geometry.IDENTITY_6D), (spec.num_shapes - 1, 1)),
      'translation': jnp.zeros((spec.num_shapes - 1, 3), jnp.float32),
  }
  return params


def normalize_points(points_mm: jnp.ndarray, spec: AIMSpec) -> jnp.ndarray:
  """(..., 3) mm -> (..., 3) normalised query coordinates."""
  return (points_mm - jnp.asarray(spec.center, jnp.float32)) / np.float32(spec.scale)


def _raw_outputs(params: Dict, x: jnp.ndarray, spec: AIMSpec, names) -> Dict[str, jnp.ndarray]:
  """Raw MLP outputs for `names` at normalised points x (N, 3)."""
  if spec.layout == 'stacked' and len(names) > 1 and 'bone' in names:
    anatomy = [n for n in names if n in ANATOMY_NETWORKS]
    # Pad last layers to 3 outputs so the anatomy MLPs share one shape, then vmap over them.
    def padded(name):
      layers = params[name]
      last = layers[-1]
      pad = 3 - last['w'].shape[1]
      return layers[:-1] + [{'w': jnp.pad(last['w'], ((0, 0), (0, pad))),
                             'b': jnp.pad(last['b'], (0, pad))}]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[padded(n) for n in anatomy])
    mlp = dataclasses.replace(spec.mlp('bone'), out_features=3)
    outs = jax.vmap(lambda p: siren.apply(p, x, mlp))(stacked)
    raw = {n: outs[i, :, :spec.mlp(n).out_features] for i, n in enumerate(anatomy)}
    for n in names:
      if n not in raw:
        raw[n] = siren.apply(params[n], x, spec.mlp(n))
    return raw
  return {n: siren.apply(params[n], x, spec.mlp(n)) for n in names}


def anatomy(params: Dict, points_mm: jnp.ndarray, spec: AIMSpec, names=ANATOMY_NETWORKS,
            edit: Optional[Sequence[Dict]] = None) -> Dict[str, jnp.ndarray]:
  """Evaluates anatomy fields at template points.

  Args:
    points_mm: (N, 3) template points in mm.
    names: which of 'bone', 'normal', 'thickness', 'skinning', 'expression' to evaluate.
    edit: an edited model's analytic operations (`edit_field`), applied on top of the networks'
      thickness and bone; None for an unedited model.
  Returns:
    dict with (N, 3) 'bone' mm, (N, 3) 'normal' unit, (N,) 'thickness' mm, (N,) 'skinning',
    (N, S-1, 3) 'expression' mm, each present when asked for.
  """
  x = normalize_points(points_mm, spec)
  raw = _raw_outputs(params, x, spec, tuple(names))
  out = {}
  if 'bone' in raw:
    out['bone'] = points_mm + np.float32(spec.bone_scale) * raw['bone']
  if 'normal' in raw:
    n = raw['normal']
    out['normal'] = n / jnp.sqrt(jnp.sum(n * n, axis=-1, keepdims=True) + 1e-12)
  if 'thickness' in raw:
    out['thickness'] = np.float32(spec.thickness_scale) * jax.nn.softplus(raw['thickness'][:, 0])
  if 'skinning' in raw:
    out['skinning'] = jax.nn.sigmoid(raw['skinning'][:, 0])
  if 'expression' in raw:
    e = raw['expression'].reshape(raw['expression'].shape[0], spec.num_shapes - 1, 3)
    out['expression'] = np.float32(spec.delta_scale) * e
  if edit:  # An edited model: thickness and bone rewritten by analytic fields.
    out = edit_field.apply(edit, points_mm, out)
  return out


def jaw_transforms(params: Dict) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """Per-shape jaw transforms, the neutral's identity included: (S, 3, 3), (S, 3) mm."""
  rotation = geometry.rotation_from_6d(params['jaw']['rot6d'])
  rotation = jnp.concatenate([jnp.eye(3, dtype=rotation.dtype)[None], rotation], axis=0)
  translation = jnp.concatenate(
      [jnp.zeros((1, 3), params['jaw']['translation'].dtype), params['jaw']['translation']], 0)
  return rotation, translation


def neutral_from_anatomy(fields: Dict[str, jnp.ndarray]) -> jnp.ndarray:
  """s0 = B + D N; (N, 3) mm."""
  return fields['bone'] + fields['thickness'][:, None] * fields['normal']


def reconstruct_from_fields(fields: Dict[str, jnp.ndarray], rotation: jnp.ndarray,
                            translation: jnp.ndarray, spec: AIMSpec) -> jnp.ndarray:
  """All S shapes from evaluated fields and jaw transforms.

  Args:
    fields: output of `anatomy` with all five networks.
    rotation: (S, 3, 3); translation: (S, 3) mm; index 0 is the neutral.
  Returns:
    (S, N, 3) mm.
  """
  s0 = neutral_from_anatomy(fields)
  skinned = geometry.skin(s0, fields['skinning'], rotation, translation,
                          jnp.asarray(spec.pivot, jnp.float32))
  deltas = jnp.concatenate([jnp.zeros_like(s0)[None], jnp.moveaxis(fields['expression'], 1, 0)])
  return skinned + deltas


def reconstruct(params: Dict, points_mm: jnp.ndarray, spec: AIMSpec,
                edit: Optional[Sequence[Dict]] = None) -> jnp.ndarray:
  """All S shapes at template points (N, 3) mm -> (S, N, 3) mm (`edit` as in `anatomy`)."""
  fields = anatomy(params, points_mm, spec, NETWORKS, edit)
  rotation, translation = jaw_transforms(params)
  return reconstruct_from_fields(fields, rotation, translation, spec)


@functools.partial(jax.jit, static_argnames=('spec',))
def _evaluate_block(params: Dict, points_mm: jnp.ndarray, spec: AIMSpec,
                    edit: Optional[Sequence[Dict]]) -> Dict[str, jnp.ndarray]:
  """Every field and the S reconstructed shapes at one block of points (compiled once per spec,
  block shape and edit structure; the edit's arrays are traced)."""
  fields = anatomy(params, points_mm, spec, NETWORKS, edit)
  rotation, translation = jaw_transforms(params)
  fields['shapes'] = reconstruct_from_fields(fields, rotation, translation, spec)
  return fields


def evaluate_chunked(params: Dict, points_mm: np.ndarray, spec: AIMSpec, chunk: int = 8192,
                     edit: Optional[Sequence[Dict]] = None) -> Dict[str, np.ndarray]:
  """Every field and every reconstructed shape at many points, in chunks (bounded memory).

  `edit`: an edited model's operations (as in `anatomy`), or None.

  Returns numpy: 'bone' (N,3), 'normal' (N,3), 'thickness' (N,), 'skinning' (N,),
  'expression' (N,S-1,3), 'shapes' (S,N,3), all mm. The block function is jitted at module level
  with the spec static, so calling this again with the same spec and N does not recompile.
  """
  pieces = []
  points_mm = np.asarray(points_mm, np.float32)
  n = points_mm.shape[0]
  for start in range(0, n, chunk):
    block = points_mm[start:start + chunk]
    pad = chunk - block.shape[0] if n > chunk else 0  # Keep one compiled shape.
    if pad:
      block = np.concatenate([block, np.repeat(block[-1:], pad, axis=0)])
    out = jax.device_get(_evaluate_block(params, block, spec, edit))
    if pad:
      out = {k: (v[:, :-pad] if k == 'shapes' else v[:-pad]) for k, v in out.items()}
    pieces.append(out)
  return {k: np.concatenate([p[k] for p in pieces], axis=1 if k == 'shapes' else 0)
          for k in pieces[0]}
