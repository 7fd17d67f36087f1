r"""How long a USD export of a long performance takes, and how large the file is.

A 1,000-frame performance of an ICT-sized actor (6,706 vertices) through the real export path
(`usd_export.write_performance`): the prepared actor's performance.npz played forwards and
backwards to the frame count, each frame offset by its own small noise (0.05 mm) so no two frames
are equal (USD's crate format stores repeated arrays once; equal frames would flatter the size).
Three exports, each written once: points and jaw only; with the error primvars against the
noise-free frames; and the first as .usda text. Then the crate file is read back (every frame's
points and the mandible's transform).

  python experiments/prepare_actor.py --source=ict \
      --ict_path=../shared/data/ict_facekit/ict_facekit_light.npz \
      --skull_path=../shared/data/skull_artisynth/vkhUpperAirway --identity_seed=0 \
      --out=/tmp/usd_bench/ict0
  python benchmarks/usd_export.py --actor=/tmp/usd_bench/ict0

Writes benchmarks/results/usd_export.json and prints one line per export.
"""

import json
import os
import platform
import time

import numpy as np
from absl import app, flags

from aim_jax import files, usd_export
from aim_jax.data import load_actor_source

_ACTOR = flags.DEFINE_string('actor', '/tmp/usd_bench/ict0', 'A prepared ICT actor folder '
                             '(prepare_actor.py) with its performance.npz.')
_FRAMES = flags.DEFINE_integer('frames', 1000, 'Frames exported.')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/usd_bench/out', 'Where the USD files go.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/usd_export.json', 'Result file.')


def long_performance(path: str, num_frames: int, noise_mm: float = 0.05, seed: int = 0):
  """(frames (F, V, 3) mm with noise, noise-free frames, jaw rotation (F, 3, 3), translation
  (F, 3) mm): the npz's sequence played forwards and backwards to `num_frames`."""
  with np.load(path) as data:
    frames, rotation, translation = (np.asarray(data[k], np.float32) for k in
                                     ('frames', 'jaw_rotation', 'jaw_translation'))
  order = np.concatenate([np.arange(len(frames)), np.arange(len(frames) - 2, 0, -1)])
  index = np.resize(order, num_frames)
  clean = frames[index]
  noise = np.random.default_rng(seed).normal(scale=noise_mm, size=clean.shape)
  return (clean + noise).astype(np.float32), clean, rotation[index], translation[index]


def read_back(path: str, num_frames: int) -> float:
  """Seconds to open a file and read every frame's skin points (summed, so every value is
  touched) and mandible transform."""
  from pxr import Usd, UsdGeom
  start = time.perf_counter()
  stage = Usd.Stage.Open(path)
  points = UsdGeom.Mesh(stage.GetPrimAtPath('/Performance/Skin')).GetPointsAttr()
  jaw = UsdGeom.Xformable(stage.GetPrimAtPath('/Performance/JawPivot/Mandible'))
  total = 0.0
  for j in range(num_frames):
    total += float(np.asarray(points.Get(Usd.TimeCode(j)), np.float64).sum())
    jaw.ComputeLocalToWorldTransform(Usd.TimeCode(j))
  assert np.isfinite(total)
  return time.perf_counter() - start


def main(argv):
  del argv
  load = os.getloadavg()
  actor = load_actor_source(_ACTOR.value)
  frames, clean, rotation, translation = long_performance(
      os.path.join(_ACTOR.value, 'performance.npz'), _FRAMES.value)
  performance = {'frames': frames, 'jaw_rotation': rotation, 'jaw_translation': translation}
  os.makedirs(_WORKDIR.value, exist_ok=True)
  runs = {}
  for name, file, truth in (('points_and_jaw', 'performance.usdc', None),
                            ('with_error_primvars', 'performance_error.usdc', clean),
                            ('points_and_jaw_usda', 'performance.usda', None)):
    path = os.path.join(_WORKDIR.value, file)
    start = time.perf_counter()
    usd_export.write_performance(path, actor, performance, actor.pivot, truth)
    seconds = time.perf_counter() - start
    runs[name] = {'file': file, 'seconds': seconds, 'megabytes': os.path.getsize(path) / 2**20,
                  'ms_per_frame': 1000 * seconds / _FRAMES.value}
    print(f'{name}: {seconds:.1f} s, {runs[name]["megabytes"]:.1f} MiB', flush=True)
  crate = os.path.join(_WORKDIR.value, 'performance.usdc')
  runs['points_and_jaw']['read_back_seconds'] = read_back(crate, _FRAMES.value)
  raw = frames.nbytes / 2**20
  from pxr import Usd
  result = {
      'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
                 f'{platform.system()}; load average {load[0]:.1f} at the start (shared)',
      'date': time.strftime('%Y-%m-%d'),
      'usd_core': '.'.join(str(v) for v in Usd.GetVersion()),
      'actor': _ACTOR.value, 'vertices': actor.num_vertices, 'frames': _FRAMES.value,
      'skull_vertices': int(actor.skull.vertices.shape[0]),
      'mandible_vertices': int(actor.mandible.vertices.shape[0]),
      'raw_float32_points_megabytes': raw,
      'exports': runs,
  }
  files.write_json(_OUT.value, result)
  print(json.dumps(result, indent=1))


if __name__ == '__main__':
  app.run(main)
