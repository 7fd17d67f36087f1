"""The fitting model (supplementary Fig. 12): per-frame codes and the fitting MLPs F_T and F_W.

For frame j with code z_j and template point c:
  F_T(z_j) -> jaw transform T_j (6D rotation offset from identity + translation, mm), and
              optionally a rigid head transform H_j for targets that are not stabilised;
  F_W(z_j, c) -> per-point coefficients w_j(c) in R^(S-1) over the expression deltas;
  x_j(c) = H_j( skin(s0(c), k(c), T_j) + sum_i w_ij(c) e_i(c) ).
The last layers start at zero, so every frame starts at the neutral with an identity jaw.

Variants of F_W (`FitSpec.variant`):
- 'per_point' (the paper's): an MLP on [z_j, c]. Its first layer is split into a code part
  (F x H) and a point part (P x H), added by broadcasting, so the (F, P, code + 3) input is never
  built.
- 'global': F_W(z_j) ignores c, one coefficient vector per frame (the paper's AIM-global
  baseline).
- 'separable': w_j(c) = A(c) g(z_j), A an MLP on c with (S-1) x R outputs and g an MLP on z with
  R outputs; the point network runs once per step for all frames, so its cost does not grow with
  the number of frames (a faster variant, compared with 'per_point' on accuracy).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from aim_jax import geometry
from aim_jax.fitting.basis import ModelBasis
from aim_jax.models import siren

VARIANTS = ('per_point', 'global', 'separable')


@dataclasses.dataclass(frozen=True)
class FitSpec:
  """Static description of the fitting model (hashable: a jit static argument).

  Attributes:
    num_coefficients: S-1, the number of expression deltas.
    code_dim: length of each frame's code z_j.
    hidden, depth: width and hidden-layer count of F_T and F_W (depth 3: a 4-layer MLP).
    activation, w0: F_W's activation ('sine' | 'relu' | 'gelu') and SIREN frequency.
    variant: 'per_point' | 'global' | 'separable' (see the module docstring).
    rank: R of the 'separable' variant.
    head_pose: also predict a rigid head transform per frame.
    translation_scale: mm per unit of F_T's raw translation outputs.
    code_init_std: standard deviation of the initial codes.
  """
  num_coefficients: int
  code_dim: int = 32
  hidden: int = 64
  depth: int = 3
  activation: str = 'sine'
  w0: float = 10.0
  variant: str = 'per_point'
  rank: int = 32
  head_pose: bool = False
  translation_scale: float = 10.0
  code_init_std: float = 0.1

  def __post_init__(self):
    if self.variant not in VARIANTS:
      raise ValueError(f'fit variant must be one of {VARIANTS}, got {self.variant!r}')
    if self.num_coefficients < 1:
      raise ValueError(f'num_coefficients must be >= 1, got {self.num_coefficients}')
    for mlp in (self.transform_mlp, self.coefficient_mlp, self.code_mlp):
      mlp()  # Checks the activation and sizes now, in one line.

  @property
  def transform_outputs(self) -> int:
    return 18 if self.head_pose else 9

  def transform_mlp(self) -> siren.MLPSpec:
    return siren.MLPSpec(in_features=self.code_dim, out_features=self.transform_outputs,
                         hidden=self.hidden, depth=self.depth, activation='relu')

  def coefficient_mlp(self) -> siren.MLPSpec:
    """F_W for 'per_point' and 'global'; A(c) for 'separable'."""
    if self.variant == 'per_point':
      inputs, outputs = self.code_dim + 3, self.num_coefficients
    elif self.variant == 'global':
      inputs, outputs = self.code_dim, self.num_coefficients
    else:
      inputs, outputs = 3, self.num_coefficients * self.rank
    return siren.MLPSpec(in_features=inputs, out_features=outputs, hidden=self.hidden,
                         depth=self.depth, activation=self.activation, w0=self.w0)

  def code_mlp(self) -> siren.MLPSpec:
    """g(z) of the 'separable' variant."""
    return siren.MLPSpec(in_features=self.code_dim, out_features=self.rank, hidden=self.hidden,
                         depth=self.depth, activation='relu')


def _zero_last(layers):
  layers = list(layers)
  layers[-1] = {'w': jnp.zeros_like(layers[-1]['w']), 'b': jnp.zeros_like(layers[-1]['b'])}
  return layers


def init(rng: jax.Array, spec: FitSpec, num_frames: int,
         networks: Optional[Dict] = None) -> Dict:
  """Fitting parameters: {'codes': (F, code_dim), 'transform': F_T, 'coefficients': F_W[,
  'code_net': g]}. Every frame starts at the neutral with an identity jaw.

  Args:
    networks: optional F_T / F_W parameters to start from (e.g. the previous chunk's).
  """
  k_code, k_t, k_w, k_g = jax.random.split(rng, 4)
  params = {'codes': spec.code_init_std * jax.random.normal(k_code, (num_frames, spec.code_dim))}
  params['transform'] = _zero_last(siren.init(k_t, spec.transform_mlp()))
  if spec.variant == 'separable':
    # A(c) keeps its random last layer and g(z) starts at zero, so w = A g = 0 but both learn.
    params['coefficients'] = siren.init(k_w, spec.coefficient_mlp())
    params['code_net'] = _zero_last(siren.init(k_g, spec.code_mlp()))
  else:
    params['coefficients'] = _zero_last(siren.init(k_w, spec.coefficient_mlp()))
  if networks:
    params.update({k: v for k, v in networks.items() if k != 'codes'})
  return params


def transforms(params: Dict, spec: FitSpec) -> Dict[str, jnp.ndarray]:
  """F_T for every frame: 'jaw_rotation' (F, 3, 3), 'jaw_translation' (F, 3) mm, and with
  head_pose 'head_rotation', 'head_translation'. Also the raw (F, 9|18) outputs as 'raw'."""
  return decode_transforms(siren.apply(params['transform'], params['codes'],
                                       spec.transform_mlp()), spec)


def decode_transforms(raw: jnp.ndarray, spec: FitSpec) -> Dict[str, jnp.ndarray]:
  """F_T's raw outputs (..., 9|18) as transforms: 'jaw_rotation' (..., 3, 3) (6D offset from the
  identity), 'jaw_translation' (..., 3) mm (times `translation_scale`), with head_pose
  'head_rotation', 'head_translation'; and 'raw' itself."""
  identity = jnp.asarray(geometry.IDENTITY_6D, raw.dtype)
  scale = np.float32(spec.translation_scale)
  out = {'raw': raw,
         'jaw_rotation': geometry.rotation_from_6d(identity + raw[..., 0:6]),
         'jaw_translation': scale * raw[..., 6:9]}
  if spec.head_pose:
    out['head_rotation'] = geometry.rotation_from_6d(identity + raw[..., 9:15])
    out['head_translation'] = scale * raw[..., 15:18]
  return out


def coefficients(params: Dict, coords: jnp.ndarray, spec: FitSpec) -> jnp.ndarray:
  """F_W: per-point coefficients (F, P, S-1) at normalised template points coords (P, 3)."""
  codes = params['codes']
  mlp = spec.coefficient_mlp()
  if spec.variant == 'global':
    w = siren.apply(params['coefficients'], codes, mlp)
    return jnp.broadcast_to(w[:, None, :], (codes.shape[0], coords.shape[0], w.shape[-1]))
  if spec.variant == 'separable':
    basis = siren.apply(params['coefficients'], coords, mlp)  # (P, (S-1) R)
    basis = basis.reshape(coords.shape[0], spec.num_coefficients, spec.rank)
    g = siren.apply(params['code_net'], codes, spec.code_mlp())  # (F, R)
    return jnp.einsum('psr,fr->fps', basis, g)
  first, rest = params['coefficients'][0], params['coefficients'][1:]
  w_code, w_point = first['w'][:spec.code_dim], first['w'][spec.code_dim:]
  pre = (codes @ w_code)[:, None, :] + (coords @ w_point + first['b'])[None, :, :]
  act = siren.activation_fn(mlp)
  x = act(pre)
  for layer in rest[:-1]:
    x = act(x @ layer['w'] + layer['b'])
  return x @ rest[-1]['w'] + rest[-1]['b']


def compose(basis: ModelBasis, w: jnp.ndarray, frame: Dict[str, jnp.ndarray]) -> jnp.ndarray:
  """x_j(c) from the (cached) basis at P points, coefficients (F, P, S-1) and F_T's transforms.

  Returns (F, P, 3) mm.
  """
  return compose_offsets(basis, jnp.einsum('fps,psd->fpd', w, basis.deltas), frame)


def compose_offsets(basis: ModelBasis, offsets: jnp.ndarray, frame: Dict[str, jnp.ndarray]
                    ) -> jnp.ndarray:
  """x_j(c) = H_j(skin(s0, k, T_j) + offsets): offsets (F, P, 3) mm = sum_i w_ij(c) e_i(c)."""
  x = geometry.skin(basis.neutral, basis.skinning, frame['jaw_rotation'],
                    frame['jaw_translation'], basis.pivot) + offsets
  if 'head_rotation' in frame:
    x = geometry.rigid_about_pivot(x, frame['head_rotation'], frame['head_translation'],
                                   basis.pivot)
  return x


def estimate(params: Dict, basis: ModelBasis, spec: FitSpec
             ) -> Tuple[jnp.ndarray, jnp.ndarray, Dict[str, jnp.ndarray]]:
  """Every frame at the basis points: (x (F, P, 3) mm, w (F, P, S-1), transforms)."""
  frame = transforms(params, spec)
  w = coefficients(params, basis.coords, spec)
  return compose(basis, w, frame), w, frame


def expression_offsets(params: Dict, basis: ModelBasis, spec: FitSpec, num_regularized: int
                       ) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """sum_i w_ij(c) e_i(c) at the basis points, and the coefficients of the first
  `num_regularized` points (for the regularisers).

  For the 'separable' variant the (F, P, S-1) coefficients are never formed: with
  w = A(c) g(z), sum_i w_i e_i = sum_r g_r (sum_i A_ir e_i), and the inner sum is computed once
  for all frames. Returns ((F, P, 3) mm, (F, min(P, num_regularized), S-1)).
  """
  if spec.variant != 'separable':
    w = coefficients(params, basis.coords, spec)
    return jnp.einsum('fps,psd->fpd', w, basis.deltas), w[:, :num_regularized]
  mlp = spec.coefficient_mlp()
  a = siren.apply(params['coefficients'], basis.coords, mlp)
  a = a.reshape(basis.coords.shape[0], spec.num_coefficients, spec.rank)  # (P, S-1, R)
  g = siren.apply(params['code_net'], params['codes'], spec.code_mlp())  # (F, R)
  per_rank = jnp.einsum('psr,psd->prd', a, basis.deltas)  # (P, R, 3)
  offsets = jnp.einsum('fr,prd->fpd', g, per_rank)
  return offsets, jnp.einsum('psr,fr->fps', a[:num_regularized], g)
