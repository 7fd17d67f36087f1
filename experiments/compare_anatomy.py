r"""Compares the learned anatomy of models of one actor side by side
(aim_jax/runs/compare_anatomy.py).

  python experiments/compare_anatomy.py --model_dirs=runs/ict0_old,runs/ict0 \
      --labels=before,after --workdir=runs/ict0_anatomy

Writes comparison.json and comparison.md (left-right asymmetry, flipped anatomy-surface
triangles, thickness roughness, Rhine depths per model and for the reference: the ground truth,
or the actor's bone meshes by closest point) and renders/anatomy_comparison.png.
"""

from absl import app, flags, logging

from aim_jax.runs import compare_anatomy
from aim_jax.runs.errors import one_line_errors, run_main

_MODEL_DIRS = flags.DEFINE_list('model_dirs', None, 'Model directories of one actor.',
                                required=True)
_LABELS = flags.DEFINE_list('labels', None, 'One label per model directory.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the comparison goes.', required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  with one_line_errors():
    compare_anatomy.run_comparison(_MODEL_DIRS.value, _LABELS.value, _WORKDIR.value,
                                   log=lambda line: print(line, flush=True))


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
