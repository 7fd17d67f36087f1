"""Refinement of a batch fit frame by frame in closed form, its strength chosen by held-out points.

A batch fit (`fit.fit_frames`) shares F_T and the 'separable' F_W, w(z, c) = A(c) g(z), over
the frames of a chunk, and most of its steps go into the last few hundredths of a millimetre
of A(c). With F_W's point network frozen, a frame is linear in its coefficients (the tracker's
unknowns, `tracking`: F_T's raw jaw outputs, K smooth template regions' coefficients W and g),
so each frame can be finished in closed form after a short batch fit:

  min_{W, g}  sum_kinds weight / M |x(u) - y|^2 + pull mean |w(u) - w(u_b)|^2,

u_b the frame's batch solution (F_T(z), W = 0, g(z)), to which a large pull returns; the jaw
stays the batch fit's (`_settings` says why). `tracking.solve_frame_linear` solves it, vmapped
over blocks of frames, with one data Gram matrix per visibility pattern and one factorisation
per pull.

The pull is chosen per chunk by held-out points: `refine.held_out` of each kind's points
(a fixed random split) are hidden in `refine.choice_frames` frames spread over the chunk, those
frames are refined from the rest at every pull of `refine.pulls`, and the pull with the least
error at the hidden points is kept; every frame is then refined from the points not hidden (so
choosing and refining share the data Gram matrix). The batch solution is a candidate too: it
has seen the hidden points, so the choice leans to it and to strong pulls. Demo, 100 frames,
192 regions: noise-free dense targets, the weakest pull (0.001; after 800 steps 0.0393 mm,
after 3,000 0.0343 against the batch's 0.0546); with 0.2 mm of noise, 0.1 after 800 steps
(0.101 -> 0.096 mm) and the batch after 3,000 (where every pull made it worse: 0.0595 -> 0.0688
at 10). README, "Fitting speed".

Dense targets only (markers may come with them), without a head pose or a refined camera, and
only for the 'separable' F_W (`applies`). From 150 markers alone it does not pay (demo, 600
batch steps, 32 regions): noise-free 0.209 -> 0.166 mm, short of the default 3,000-step fit's
0.137, and with 0.3 mm of noise 0.223 -> 0.230 mm at the strongest pull offered (both with
the jaw freed too, before the batch was a candidate); each hidden marker has moved the batch
fit it is measured against.
"""

from __future__ import annotations

import functools
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import model as model_lib
from aim_jax.fitting import tracking
from aim_jax.fitting.basis import ModelBasis
from aim_jax.fitting.targets import TargetSet


def check_settings(config: ml_collections.ConfigDict):
  """ValueError (one line) for `refine.*` settings that cannot work, before anything is
  written."""
  r = config.refine
  if int(r.regions) < 0:
    raise ValueError(f'refine.regions must be >= 0 (0: off), got {r.regions}')
  if int(r.regions) and not parse_pulls(r.pulls):
    raise ValueError('refine.pulls must name at least one pull when refine.regions > 0')
  if not 0.0 < float(r.held_out) < 1.0:
    raise ValueError(f'refine.held_out must be in (0, 1), got {r.held_out}')
  if int(r.choice_frames) < 1:
    raise ValueError(f'refine.choice_frames must be >= 1, got {r.choice_frames}')


def parse_pulls(text) -> list:
  """'10,1,0.1' -> [10.0, 1.0, 0.1]; ValueError (one line) for an entry that is not > 0."""
  try:
    pulls = [float(p) for p in str(text).split(',') if p.strip()]
  except ValueError:
    raise ValueError(f'refine.pulls must be comma-separated numbers, got {text!r}') from None
  if any(not np.isfinite(p) or p <= 0 for p in pulls):
    raise ValueError(f'refine.pulls must be finite and > 0, got {text!r}')
  return pulls


def applies(config: ml_collections.ConfigDict, spec: model_lib.FitSpec, targets) -> bool:
  """Whether a chunk's fit is refined: `refine.regions` > 0, dense targets (with or without
  markers; not 2D landmarks), the separable F_W, no head pose or camera refinement."""
  return (int(config.refine.regions) > 0 and 'dense' in targets
          and 'landmarks' not in targets and spec.variant == 'separable'
          and not spec.head_pose and not config.loss.optimize_camera)


def _settings(config: ml_collections.ConfigDict, spec: model_lib.FitSpec
              ) -> tracking.SolverSettings:
  """The per-frame solve with the objective divided by the pull: data weights as the batch
  fit's (their rows divided by the pull in `_setup`), no magnitude term, the pull toward the
  batch solution in the temporal slot at weight 1 (so one compiled solve serves every pull),
  the jaw held at the batch fit's."""
  options = fit_lib.loss_options(config)
  weights = tuple((name, {'coefficients': 0.0, 'temporal': 1.0}.get(name, w))
                  for name, w in options.weights)
  # No Levenberg-Marquardt iterations: the jaw stays the batch fit's. Freed, it fitted the
  # demo's skin 5 % better and its jaw 0.9 deg closer to the truth, but drifted 1.2-2.1 deg
  # further from the truth on ICT identities 0 and 41 (the skin does not pin a real jaw down).
  return tracking.SolverSettings(spec=spec, weights=weights, robust=options.robust,
                                 robust_scale=options.robust_scale, iterations=0)


def _setup(tb, targets, settings, data, pull: float) -> Dict:
  """`tracking.linear_setup` of the objective divided by `pull` (data rows / pull)."""
  scaled = dict(data, rows={k: r / pull for k, r in data['rows'].items()},
                gram=data['gram'] / pull, coupling=data['coupling'] / pull)
  return tracking.linear_setup(tb, targets, settings, scaled)


@functools.partial(jax.jit, static_argnames=('settings',))
def _solve_frames(us: jnp.ndarray, tb: tracking.TrackingBasis, targets: Dict[str, TargetSet],
                  settings: tracking.SolverSettings, setup: Dict) -> jnp.ndarray:
  """(G, n) every frame of `targets` (values (G, M, 3), one visibility row (1, M)) solved from
  its batch unknowns `us` (G, n), which it is pulled toward."""
  def one(u, values):
    frame = {k: t.replace(values=values[k][None]) for k, t in targets.items()}
    return tracking.solve_frame_linear(u, tb, frame, settings, setup)[0]
  return jax.vmap(one)(us, {k: t.values for k, t in targets.items()})


def _groups(visible: Dict[str, np.ndarray]):
  """[(pattern key, frame indices, {kind: (1, M) visibility})]: the frames with the same
  visibility, which share a setup."""
  keys = [b''.join(visible[k][j].tobytes() for k in sorted(visible))
          for j in range(len(next(iter(visible.values()))))]
  out = {}
  for j, key in enumerate(keys):
    out.setdefault(key, []).append(j)
  return [(key, np.asarray(ids), {k: v[ids[0]][None] for k, v in visible.items()})
          for key, ids in out.items()]


class Solver:
  """Refines frames at given pulls, keeping each visibility pattern's data Gram matrix and each
  (pattern, pull) factorisation for the frames that follow (`tracking.linear_data`,
  `tracking.linear_setup`): choosing the pull and refining every frame share them."""

  def __init__(self, tb: tracking.TrackingBasis, settings: tracking.SolverSettings,
               block: int):
    self.tb, self.settings, self.block = tb, settings, block
    self._data, self._setups = {}, {}

  def _solve(self, us, group, setup) -> np.ndarray:
    """`_solve_frames` in blocks of `block` frames (the last padded), one compiled program."""
    out = []
    for start in range(0, us.shape[0], self.block):
      ids = np.minimum(np.arange(start, start + self.block), us.shape[0] - 1)
      block = {k: t.replace(values=t.values[ids]) for k, t in group.items()}
      out.append(np.asarray(_solve_frames(us[ids], self.tb, block, self.settings, setup)))
    return np.concatenate(out)[:us.shape[0]]

  def __call__(self, us: jnp.ndarray, targets: Dict[str, TargetSet], pulls) -> list:
    """[(F, n) refined unknowns for each pull]: every frame of `targets` (values (F, M, 3),
    visible (F, M)) from its batch unknowns `us` (F, n)."""
    values = {k: np.asarray(t.values) for k, t in targets.items()}
    visible = {k: np.asarray(t.visible) for k, t in targets.items()}
    out = [np.zeros(us.shape, np.float32) for _ in pulls]
    for key, ids, group_visible in _groups(visible):
      group = {k: t.replace(values=jnp.asarray(values[k][ids]),
                            visible=jnp.asarray(group_visible[k]))
               for k, t in targets.items()}
      if key not in self._data:
        self._data[key] = tracking.linear_data(self.tb, group, self.settings)
      for i, pull in enumerate(pulls):
        if (key, pull) not in self._setups:
          self._setups[key, pull] = _setup(self.tb, group, self.settings, self._data[key], pull)
        out[i][ids] = self._solve(us[ids], group, self._setups[key, pull])
    return out


def held_out_split(targets: Dict[str, TargetSet], fraction: float, seed: int
                   ) -> Dict[str, np.ndarray]:
  """{kind: (M,) bool} a fixed random `fraction` of each kind's points to hide (at least one,
  at most all but one)."""
  out = {}
  for i, (kind, t) in enumerate(sorted(targets.items())):
    m = t.points.count
    count = min(max(int(round(fraction * m)), 1), m - 1)
    hidden = np.zeros(m, bool)
    hidden[np.random.default_rng(seed + i).choice(m, count, replace=False)] = True
    out[kind] = hidden
  return out


_points_of_frames = jax.jit(jax.vmap(tracking.frame_points_at, in_axes=(None, 0, None, None)),
                            static_argnums=2)  # (F, M, 3) mm of unknowns (F, n).


def choose_pull(solver: Solver, us, targets: Dict[str, TargetSet], hidden, pulls,
                frames: int) -> Dict:
  """The pull with the lowest error at the `hidden` points ({kind: (M,) bool}) of `frames`
  frames spread over the chunk, refined from the rest of their points at every pull. The batch
  solution itself is the last candidate (pull inf, no refinement): it has seen the hidden
  points, so it is kept wherever the refinement does not clearly help (noisy targets).

  Returns {'pull', 'pulls': the candidates, 'held_out_rms_mm': per candidate (rms 3D distance
  at the hidden points that were observed), 'frames': the frames used}.
  """
  ids = np.unique(np.linspace(0, us.shape[0] - 1, min(frames, us.shape[0])).round()
                  .astype(int))
  chosen = {k: t.frames(ids) for k, t in targets.items()}
  solved = solver(us[ids], _without(chosen, hidden), pulls) + [np.asarray(us[ids])]
  candidates = [float(p) for p in pulls] + [np.inf]
  rms = []
  for unknowns in solved:
    squared, count = 0.0, 0
    for kind, t in sorted(chosen.items()):
      x = np.asarray(_points_of_frames(solver.tb, jnp.asarray(unknowns), solver.settings.spec,
                                       t.points))
      mask = (np.asarray(t.visible) > 0) & hidden[kind][None]
      squared += float(np.sum((x - np.asarray(t.values)) ** 2, axis=-1)[mask].sum())
      count += int(mask.sum())
    rms.append(float(np.sqrt(squared / max(count, 1))))
  return {'pull': candidates[int(np.argmin(rms))], 'pulls': candidates,
          'held_out_rms_mm': rms, 'frames': ids.tolist()}


def _without(targets: Dict[str, TargetSet], hidden: Dict[str, np.ndarray]):
  """The targets with the `hidden` points marked unobserved in every frame."""
  return {k: t.replace(visible=jnp.asarray(np.asarray(t.visible) * ~hidden[k]))
          for k, t in targets.items()}


def _finite(pull: float) -> float:
  """The pull as stored: 0 for the batch fit kept as it is (inf)."""
  return 0.0 if np.isinf(pull) else float(pull)


def refine_frames(config: ml_collections.ConfigDict, spec: model_lib.FitSpec,
                  basis: ModelBasis, params: Dict, targets: Dict[str, TargetSet],
                  log: Optional[Callable[[str], None]] = print) -> Dict[str, np.ndarray]:
  """A chunk's batch fit `params` (networks and codes (F, D)) refined frame by frame.

  Returns `fit.evaluate_frames`'s arrays for the refined frames ('frames' (F, V, 3) mm,
  'coefficients' (F, V, S-1), 'codes' (F, D) as fitted, 'jaw_rotation' (F, 3, 3),
  'jaw_translation' (F, 3) mm) plus 'refine_unknowns' (F, n) (`tracking.split_unknowns`),
  and the chunk's choice, the same in each of its frames: 'refine_pull' (F,) (0: the batch fit
  kept as it is, its unknowns in 'refine_unknowns'), 'refine_pulls' (F, P + 1) the candidates
  (the batch last, as 0), 'refine_held_out_rms_mm' (F, P + 1) their held-out errors.
  """
  r = config.refine
  networks = jax.tree_util.tree_map(
      jnp.asarray, {k: v for k, v in params.items() if k not in ('codes', 'camera')})
  regions = int(r.regions)
  tb = tracking.tracking_basis(networks, basis, spec, int(config.loss.regularized_points),
                               regions)
  codes = jnp.asarray(params['codes'])
  us = jax.vmap(lambda z: tracking.unknowns_of(networks, z, spec, regions))(codes)
  solver = Solver(tb, _settings(config, spec), int(r.choice_frames))
  pulls = parse_pulls(r.pulls)
  # The held-out points are left out of every frame's refinement (they were fitted by the
  # batch fit), so choosing the pull and refining share one data Gram matrix per visibility.
  hidden = held_out_split(targets, float(r.held_out), int(config.seed))
  choice = choose_pull(solver, us, targets, hidden, pulls, int(r.choice_frames))
  if log:
    name = lambda p: 'batch' if np.isinf(p) else f'{p:g}'
    scores = ', '.join(f'{name(p)}: {e:.4f}' for p, e in zip(choice['pulls'],
                                                              choice['held_out_rms_mm']))
    log(f'refinement ({regions} regions): {name(choice["pull"])} chosen by held-out points '
        f'(rms mm {scores})')
  if np.isinf(choice['pull']):  # The batch fit as it is.
    unknowns = np.asarray(us)
    out = fit_lib.evaluate_frames(params, spec, basis)
  else:
    unknowns, = solver(us, _without(targets, hidden), [choice['pull']])
    result = jax.device_get(tracking.evaluate_unknowns(tb, jnp.asarray(unknowns), spec))
    a = tracking.point_coefficients(networks, basis, spec)  # (V, S-1, R)
    _, w_regions, g = jax.vmap(lambda u: tracking.split_unknowns(u, spec))(
        jnp.asarray(unknowns))
    out = {'frames': result['frames'], 'codes': params['codes'],
           'coefficients': (jnp.einsum('vsr,fr->fvs', a, g)
                            + jnp.einsum('vk,fks->fvs', tb.regions, w_regions)),
           'jaw_rotation': result['jaw_rotation'],
           'jaw_translation': result['jaw_translation']}
  return {**{k: np.asarray(v) for k, v in out.items()},
          'refine_unknowns': unknowns,
          # The chunk's choice, repeated per frame (a sequence's chunks are concatenated), with
          # 0 for the batch candidate (pull inf): fit files hold finite numbers only.
          'refine_pull': np.full(len(unknowns), _finite(choice['pull']), np.float32),
          'refine_pulls': np.tile(np.float32([_finite(p) for p in choice['pulls']]),
                                  (len(unknowns), 1)),
          'refine_held_out_rms_mm': np.tile(np.float32(choice['held_out_rms_mm']),
                                            (len(unknowns), 1))}
