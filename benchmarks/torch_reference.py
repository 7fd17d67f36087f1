"""The AIM L_Model train step in PyTorch (eager or `torch.compile`), identical in work to
`aim_jax.learning`'s full-batch step with the default config's terms.

Used only by `benchmarks/learn_step.py` for a same-machine throughput comparison: same networks
(five SIRENs with the SIREN init), same squashing, jaw skinning with 6D rotations, the same loss
terms on the same batch sizes, Adam. torch is a `bench` extra, never a core dependency.
"""

import math

import numpy as np
import torch


def _siren(out_features, hidden, depth, w0):
  layers = []
  widths = [3] + [hidden] * depth + [out_features]
  for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
    layer = torch.nn.Linear(fan_in, fan_out)
    bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / w0
    torch.nn.init.uniform_(layer.weight, -bound, bound)
    torch.nn.init.uniform_(layer.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
    layers.append(layer)
  return torch.nn.ModuleList(layers)


def _apply(layers, x, w0):
  for layer in layers[:-1]:
    x = torch.sin(w0 * layer(x))
  return layers[-1](x)


def _rotation_from_6d(x):
  a1, a2 = x[..., :3], x[..., 3:]
  b1 = a1 / a1.norm(dim=-1, keepdim=True)
  a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
  b2 = a2 / a2.norm(dim=-1, keepdim=True)
  return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)


class AIM(torch.nn.Module):

  def __init__(self, spec):
    super().__init__()
    self.spec = spec
    outs = {'bone': 3, 'normal': 3, 'thickness': 1, 'skinning': 1,
            'expression': 3 * (spec.num_shapes - 1)}
    self.nets = torch.nn.ModuleDict(
        {k: _siren(o, spec.hidden, spec.depth, spec.w0) for k, o in outs.items()})
    identity = torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(spec.num_shapes - 1, 1)
    self.rot6d = torch.nn.Parameter(identity)
    self.translation = torch.nn.Parameter(torch.zeros(spec.num_shapes - 1, 3))
    self.center = torch.tensor(spec.center)
    self.pivot = torch.tensor(spec.pivot)

  def fields(self, points, names):
    x = (points - self.center) / self.spec.scale
    raw = {n: _apply(self.nets[n], x, self.spec.w0) for n in names}
    out = {}
    if 'bone' in raw:
      out['bone'] = points + self.spec.bone_scale * raw['bone']
    if 'normal' in raw:
      out['normal'] = raw['normal'] / torch.sqrt((raw['normal'] ** 2).sum(-1, keepdim=True)
                                                 + 1e-12)
    if 'thickness' in raw:
      out['thickness'] = self.spec.thickness_scale * torch.nn.functional.softplus(
          raw['thickness'][:, 0])
    if 'skinning' in raw:
      out['skinning'] = torch.sigmoid(raw['skinning'][:, 0])
    if 'expression' in raw:
      out['expression'] = self.spec.delta_scale * raw['expression'].reshape(
          -1, self.spec.num_shapes - 1, 3)
    return out

  def reconstruct(self, f):
    s0 = f['bone'] + f['thickness'][:, None] * f['normal']
    rotation = torch.cat([torch.eye(3)[None], _rotation_from_6d(self.rot6d)])
    translation = torch.cat([torch.zeros(1, 3), self.translation])
    moved = torch.einsum('sij,nj->sni', rotation, s0 - self.pivot) + self.pivot + (
        translation[:, None])
    k = f['skinning'][None, :, None]
    deltas = torch.cat([torch.zeros_like(s0)[None], f['expression'].permute(1, 0, 2)])
    return (1 - k) * s0[None] + k * moved + deltas


def _reflect(points, plane):
  return points - 2.0 * ((points @ plane[:3]) - plane[3])[:, None] * plane[:3]


def _fold(triangles, skin_normal, margin):
  a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
  ratio = (torch.cross(b - a, c - a, dim=-1) * skin_normal).sum(-1)
  return torch.relu(margin - ratio).mean()


def make_step(config, actor, constraints):
  """(model, loss, step, draw): loss(position, jitter) is the total of L_Model on the full
  vertex set with every term `learning.loss_fn` computes for `config` (a term whose weight is 0
  is not computed, as there): L_R and the neutral term, L_A, L_D and the small-thickness prior,
  L_K and its smoothness, L_Sym, the expression prior, the thickness, bone (second difference)
  and normal smoothness at the regulariser positions `position` (K,) with jitter (K, 3) mm, and
  the fold penalty on every skin triangle; step(position, jitter) is one Adam step on it; draw()
  draws a step's positions and jitter. Gradient clipping and the warmup + cosine schedule of
  our optimiser are left out (element-wise, negligible in cost)."""
  from aim_jax import learning
  if config.train.batch_size or config.train.constraint_batch:
    raise ValueError('the PyTorch reference implements full-batch steps only (batch_size 0, '
                     'constraint_batch 0)')
  torch.manual_seed(0)
  spec = learning.model_spec(config, actor)
  weights = learning.loss_weights(config)
  unsupported = [k for k in ('bone_symmetry', 'depth_prior', 'jaw_prior') if weights[k]]
  if unsupported:
    raise ValueError(f'the PyTorch reference does not implement {unsupported}')
  uses = lambda *names: any(weights[n] for n in names)
  model = AIM(spec)
  optimizer = torch.optim.Adam(model.parameters(), lr=config.train.learning_rate,
                               betas=(0.9, config.train.adam_b2))
  template = torch.tensor(actor.neutral)
  shapes = torch.tensor(actor.shapes)
  partner_all = torch.tensor(np.maximum(actor.symmetry, 0), dtype=torch.long)
  valid_all = torch.tensor(actor.symmetry >= 0, dtype=torch.float32)
  plane = torch.tensor(actor.mirror_plane)
  unconstrained = torch.tensor(~constraints.vertex_mask(), dtype=torch.float32)
  c_points, c_bone = torch.tensor(constraints.points), torch.tensor(constraints.bone_point)
  c_normal, c_thickness = torch.tensor(constraints.bone_normal), torch.tensor(
      constraints.thickness)
  c_id = torch.tensor(constraints.bone_id, dtype=torch.float32)
  faces = torch.tensor(np.asarray(actor.faces), dtype=torch.long)
  skin_normal = torch.tensor(learning.skin_fold_normals(actor.neutral, actor.faces))
  num_vertices, sub = template.shape[0], config.train.symmetry_batch
  sub = min(sub, num_vertices) if sub else num_vertices
  jitter_mm, margin = config.loss.skinning_jitter_mm, config.loss.fold_margin
  anatomy_names = ('bone', 'normal', 'thickness', 'skinning')

  def loss(position, jitter):
    f = model.fields(template, anatomy_names + ('expression',))
    predicted = model.reconstruct(f)
    terms = {'reconstruction': ((predicted - shapes) ** 2).sum(-1).mean()}
    if uses('neutral'):
      terms['neutral'] = ((predicted[0] - shapes[0]) ** 2).sum(-1).mean()
    if uses('expression_small'):
      terms['expression_small'] = (f['expression'] ** 2).sum(-1).mean()
    c = model.fields(c_points, anatomy_names)
    terms['anatomy'] = ((c['bone'] - c_bone) ** 2).sum(-1).mean()
    terms['anatomy_normal'] = (1 - (c['normal'] * c_normal).sum(-1)).mean()
    terms['thickness'] = ((c['thickness'] - c_thickness) ** 2).mean()
    terms['skinning'] = ((c['skinning'] - c_id) ** 2).mean()
    terms['thickness_small'] = (f['thickness'] ** 2 * unconstrained).sum() / unconstrained.sum()
    own = {k: f[k][position] for k in anatomy_names}
    points = template[position]
    smooth = [n for n, t in (('skinning', 'skinning_smooth'), ('thickness', 'thickness_smooth'),
                             ('bone', 'bone_smooth'), ('normal', 'normal_smooth')) if uses(t)]
    if smooth:
      nearby = model.fields(points + jitter, tuple(smooth))
      if uses('skinning_smooth'):
        terms['skinning_smooth'] = ((own['skinning'] - nearby['skinning']) ** 2).mean()
      if uses('thickness_smooth'):
        terms['thickness_smooth'] = ((own['thickness'] - nearby['thickness']) ** 2).mean()
      if uses('bone_smooth'):
        behind = model.fields(points - jitter, ('bone',))['bone']
        terms['bone_smooth'] = ((nearby['bone'] + behind - 2 * own['bone']) ** 2).sum(-1).mean()
      if uses('normal_smooth'):
        terms['normal_smooth'] = (1 - (own['normal'] * nearby['normal']).sum(-1)).mean()
    if uses('symmetry'):
      valid = valid_all[position]
      m = model.fields(template[partner_all[position]], anatomy_names)
      n = own['normal']
      sym = (((_reflect(own['bone'], plane) - m['bone']) ** 2).sum(-1)
             + 1 - ((n - 2 * (n @ plane[:3])[:, None] * plane[:3]) * m['normal']).sum(-1)
             + (own['thickness'] - m['thickness']) ** 2
             + (own['skinning'] - m['skinning']) ** 2)
      terms['symmetry'] = (sym * valid).sum() / valid.sum().clamp(min=1)
    if uses('fold'):
      terms['fold'] = _fold(f['bone'][faces], skin_normal, margin)
    return sum(weights[k] * v for k, v in terms.items())

  def step(position, jitter):
    optimizer.zero_grad(set_to_none=True)
    total = loss(position, jitter)
    total.backward()
    optimizer.step()
    return total.detach()

  def draw():
    """The step's random draws (regulariser positions and jitter), outside the compiled step."""
    return torch.randperm(num_vertices)[:sub], jitter_mm * torch.randn(sub, 3)

  return model, loss, step, draw


def load_params(model, params):
  """Copies `aim.init`-layout JAX parameters into the reference model (for the equality check)."""
  with torch.no_grad():
    for name, layers in model.nets.items():
      for layer, p in zip(layers, params[name]):
        layer.weight.copy_(torch.tensor(np.asarray(p['w']).T))
        layer.bias.copy_(torch.tensor(np.asarray(p['b'])))
    model.rot6d.copy_(torch.tensor(np.asarray(params['jaw']['rot6d'])))
    model.translation.copy_(torch.tensor(np.asarray(params['jaw']['translation'])))


def make_stepper(config, actor, constraints, compile_mode=None):
  """Returns (run(n): n Adam steps of L_Model, warm-up seconds). With compile_mode (e.g.
  'default', 'max-autotune') the loss and its backward run under `torch.compile` (inductor);
  the warm-up is the first steps, which compile."""
  import time
  _, _, step, draw = make_step(config, actor, constraints)
  if compile_mode:
    step = torch.compile(step, mode=compile_mode)

  def run(n):
    for _ in range(n):
      step(*draw())
  start = time.perf_counter()
  run(2)  # Compiles (and recompiles once for the optimiser's state, when compiled).
  return run, time.perf_counter() - start
