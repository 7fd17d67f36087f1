r"""Train-step throughput: our jitted JAX step against the identical PyTorch step, one run.

Both implement the same L_Model step on the synthetic actor with every term of the default
config (`configs/learn.py`): five SIRENs (B, N, D, K, E), the per-shape jaw transforms,
reconstruction of all S shapes at every query point and the neutral term, L_A, L_D, L_K, L_Sym,
the expression prior, the thickness, bone and normal smoothness on a random `symmetry_batch` of
the vertices, the fold penalty, and an Adam update. PyTorch runs eager and under
`torch.compile` (inductor, default mode); ours runs one step per call and `--steps` steps per
call (a `lax.scan`, as learning does with `train.steps_per_call`). The implementations alternate
in rounds so machine noise hits all alike. Also reported: the warm-up (compile) time and the
fraction of this machine's dense float32 matmul rate each reaches (MLP FLOPs of forward +
backward / step time / measured GEMM rate).

  pip install -e '.[bench]'
  python benchmarks/learn_step.py --resolution=64 --hidden=128 --rounds=5 --steps=10

Writes benchmarks/results/learn_step.json and prints a markdown table.
"""

import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from steppers import gemm_rate, learn_step_config, learn_stepper

from aim_jax import learning
from aim_jax.anatomy import constraints as constraints_lib
from aim_jax.data import synthetic

_RESOLUTION = flags.DEFINE_integer('resolution', 64, 'Synthetic actor resolution.')
_HIDDEN = flags.DEFINE_integer('hidden', 128, 'Hidden width of every network.')
_DEPTH = flags.DEFINE_integer('depth', 3, 'Hidden layers per network.')
_ROUNDS = flags.DEFINE_integer('rounds', 5, 'Alternating measurement rounds.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Steps per round.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/learn_step.json', 'Result file.')


def _torch_stepper(config, actor, constraints, compile_mode=None):
  import torch_reference  # Beside this file (benchmarks/ is on sys.path when run as a script).
  return torch_reference.make_stepper(config, actor, constraints, compile_mode)


def check_same_terms(config, actor, constraints, seed=0):
  """The total loss of our step and of the PyTorch reference at the same parameters (ours,
  copied) and the same random draws (regulariser positions and jitter as `learning.loss_fn`
  draws them from its key). Returns (ours, PyTorch)."""
  import torch
  import torch_reference
  spec = learning.model_spec(config, actor)
  settings = learning.StepSettings.from_config(config, spec)
  data = learning.make_learning_data(actor, constraints)
  params = learning.create_state(config, spec, settings.optimizer.optimizer()).params
  key, k_perturb = jax.random.split(jax.random.PRNGKey(seed))
  # Away from the initialisation (identity jaws, an unfolded anatomy), so every term counts.
  leaves, tree = jax.tree_util.tree_flatten(params)
  params = jax.tree_util.tree_unflatten(tree, [
      p + 0.1 * jnp.std(p + 1.0) * jax.random.normal(k, p.shape)
      for p, k in zip(leaves, jax.random.split(k_perturb, len(leaves)))])
  ours, terms = learning.loss_fn(params, data, key, spec, dict(settings.weights), 0, 0,
                             settings.symmetry_batch, settings.skinning_jitter_mm,
                             settings.fold_margin)
  _, k_jitter, k_sub = jax.random.split(key, 5)[1:4]
  position = learning.regulariser_positions(k_sub, actor.num_vertices, settings.symmetry_batch)
  jitter = settings.skinning_jitter_mm * jax.random.normal(k_jitter, (position.shape[0], 3))
  model, loss, _, _ = torch_reference.make_step(config, actor, constraints)
  torch_reference.load_params(model, params)
  with torch.no_grad():
    theirs = loss(torch.tensor(np.asarray(position), dtype=torch.long),
                  torch.tensor(np.asarray(jitter)))
  return float(ours), float(theirs), {k: float(v) for k, v in terms.items()}


def _mlp_flops(config, num_points, num_shapes, num_constraints, symmetry_batch):
  """Multiply-adds x 2 of every MLP evaluation in one step, x 3 for forward + backward."""
  h, depth = config.model.hidden, config.model.depth
  def mlp(out):
    return 2 * (3 * h + (depth - 1) * h * h + h * out)
  full = sum(mlp(o) for o in (3, 3, 1, 1, 3 * (num_shapes - 1)))
  anatomy = sum(mlp(o) for o in (3, 3, 1, 1))
  # At the regularisers' points: the mirror partners (L_Sym), the jittered copies (skinning,
  # thickness, bone and normal smoothness) and the bone behind (its second difference).
  per_step = (num_points * full + num_constraints * anatomy
              + symmetry_batch * (2 * anatomy + mlp(3)))
  return 3 * per_step


def main(argv):
  del argv
  actor = synthetic.make_synthetic_actor(resolution=_RESOLUTION.value)
  constraints = constraints_lib.compute_constraints(actor, source_fraction=0.1)
  config = lambda **kw: learn_step_config(_HIDDEN.value, _DEPTH.value, **kw)
  ours, theirs, _ = check_same_terms(config(sine='xla'), actor, constraints)
  print(f'same parameters and draws: total loss {ours:.6g} (ours), {theirs:.6g} (PyTorch)')
  if not np.isclose(ours, theirs, rtol=1e-4):
    raise SystemExit('the PyTorch reference does not compute our loss: stopping')
  block = _STEPS.value
  makers = {
      f'jax (poly sine, loop, {block} steps per call)':
      lambda: learn_stepper(config(), actor, constraints, block),
      'jax (poly sine, loop)': lambda: learn_stepper(config(), actor, constraints),
      'jax (jnp.sin, loop)': lambda: learn_stepper(config(sine='xla'), actor, constraints),
      'jax (poly sine, stacked)': lambda: learn_stepper(config(layout='stacked'), actor,
                                                        constraints),
      'pytorch eager': lambda: _torch_stepper(config(), actor, constraints),
      'pytorch torch.compile': lambda: _torch_stepper(config(), actor, constraints, 'default'),
  }
  steppers, warmup = {}, {}
  for name, make in makers.items():
    steppers[name], warmup[name] = make()
    print(f'{name}: warm-up (compile) {warmup[name]:.1f} s', flush=True)
  times = {name: [] for name in steppers}
  for _ in range(_ROUNDS.value):
    for name, run in steppers.items():
      start = time.perf_counter()
      run(_STEPS.value)
      times[name].append((time.perf_counter() - start) / _STEPS.value)
  work = actor.num_vertices * actor.num_shapes
  eager = np.median(times['pytorch eager'])
  compiled = np.median(times['pytorch torch.compile'])
  flops = _mlp_flops(config(), actor.num_vertices,
                     actor.num_shapes, constraints.count, 1024)
  gemm = gemm_rate()
  rows = []
  for name, values in times.items():
    t = float(np.median(values))
    rows.append({'implementation': name, 'step_ms': 1e3 * t,
                 'warmup_s': warmup[name], 'points_x_shapes_per_s': work / t,
                 'speedup_vs_pytorch_eager': eager / t,
                 'speedup_vs_torch_compile': compiled / t,
                 'fraction_of_gemm_rate': flops / t / gemm})
  import torch
  result = {
      'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
                 f'{platform.system()}',
      'jax': jax.__version__, 'torch': torch.__version__, 'torch_threads':
      torch.get_num_threads(), 'vertices': actor.num_vertices, 'shapes': actor.num_shapes,
      'constraints': constraints.count, 'hidden': _HIDDEN.value, 'depth': _DEPTH.value,
      'gemm_gflops': gemm / 1e9, 'mlp_gflop_per_step': flops / 1e9, 'rows': rows,
      'date': time.strftime('%Y-%m-%d')}
  os.makedirs(os.path.dirname(_OUT.value), exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(result, f, indent=1)
  print(f'{result["machine"]}; {actor.num_vertices} vertices x {actor.num_shapes} shapes, '
        f'hidden {_HIDDEN.value}, depth {_DEPTH.value}; GEMM {gemm / 1e9:.1f} GFLOP/s')
  print('| implementation | step (ms) | warm-up (s) | vs PyTorch eager | vs torch.compile | '
        'of GEMM rate |')
  print('|---|---|---|---|---|---|')
  for r in rows:
    print(f'| {r["implementation"]} | {r["step_ms"]:.1f} | {r["warmup_s"]:.1f} | '
          f'{r["speedup_vs_pytorch_eager"]:.2f}x | {r["speedup_vs_torch_compile"]:.2f}x | '
          f'{100 * r["fraction_of_gemm_rate"]:.0f}% |')


if __name__ == '__main__':
  app.run(main)
