"""The AIM L_Model train step in PyTorch (eager), identical in work to `aim_jax.learning`.

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


def make_stepper(config, actor, constraints):
  """Returns run(n): n Adam steps of L_Model on the full vertex set (as `learning` does)."""
  from aim_jax import learning
  torch.manual_seed(0)
  spec = learning.model_spec(config, actor)
  weights = learning.loss_weights(config)
  model = AIM(spec)
  optimizer = torch.optim.Adam(model.parameters(), lr=config.train.learning_rate)
  template = torch.tensor(actor.neutral)
  shapes = torch.tensor(actor.shapes)
  partner = torch.tensor(np.maximum(actor.symmetry, 0), dtype=torch.long)
  valid = torch.tensor(actor.symmetry >= 0, dtype=torch.float32)
  plane = torch.tensor(actor.mirror_plane)
  unconstrained = torch.tensor(~constraints.vertex_mask(), dtype=torch.float32)
  c_points, c_bone = torch.tensor(constraints.points), torch.tensor(constraints.bone_point)
  c_normal, c_thickness = torch.tensor(constraints.bone_normal), torch.tensor(
      constraints.thickness)
  c_id = torch.tensor(constraints.bone_id, dtype=torch.float32)
  sub = config.train.symmetry_batch
  anatomy_names = ('bone', 'normal', 'thickness', 'skinning')

  def step():
    optimizer.zero_grad(set_to_none=True)
    f = model.fields(template, anatomy_names + ('expression',))
    terms = {'reconstruction': ((model.reconstruct(f) - shapes) ** 2).sum(-1).mean()}
    c = model.fields(c_points, anatomy_names)
    terms['anatomy'] = ((c['bone'] - c_bone) ** 2).sum(-1).mean()
    terms['anatomy_normal'] = (1 - (c['normal'] * c_normal).sum(-1)).mean()
    terms['thickness'] = ((c['thickness'] - c_thickness) ** 2).mean()
    terms['skinning'] = ((c['skinning'] - c_id) ** 2).mean()
    terms['thickness_small'] = (f['thickness'] ** 2 * unconstrained).sum() / unconstrained.sum()
    jitter = config.loss.skinning_jitter_mm * torch.randn(sub, 3)
    nearby = model.fields(template[:sub] + jitter, ('skinning',))['skinning']
    terms['skinning_smooth'] = ((f['skinning'][:sub] - nearby) ** 2).mean()
    m = model.fields(template[partner[:sub]], anatomy_names)
    sym = (((_reflect(f['bone'][:sub], plane) - m['bone']) ** 2).sum(-1)
           + 1 - ((f['normal'][:sub] - 2 * (f['normal'][:sub] @ plane[:3])[:, None] * plane[:3])
                  * m['normal']).sum(-1)
           + (f['thickness'][:sub] - m['thickness']) ** 2
           + (f['skinning'][:sub] - m['skinning']) ** 2)
    terms['symmetry'] = (sym * valid[:sub]).sum() / valid[:sub].sum().clamp(min=1)
    total = sum(weights[k] * v for k, v in terms.items())
    total.backward()
    optimizer.step()
    return total

  def run(n):
    for _ in range(n):
      step()
  run(1)
  return run
