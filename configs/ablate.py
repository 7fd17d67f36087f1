"""The ablation studies (supplementary B.5; experiments/ablate.py), full size for real runs.

Every variant is learned with the README demo's learning config (`learn_demo.py`: ~4k vertices,
hidden 128, 3,000 full-batch steps; the paper's 256-wide, 1e4-step model is `learn.py`, for a
GPU) and fitted with `fit.py`'s parameters, identical for every variant. Per job, on the 2-core
CPU of the README: learning ~4 min at hidden 128 (longer for 256 and 512), fitting ~1 min.
Override anything on the command line, e.g. `--config.learn.train.num_steps=1000` or
`--config.studies.losses.seeds=1`.
"""

import ml_collections

from configs import fit, learn_demo


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.learn = learn_demo.get_config()
  config.learn.output.render = False  # The report renders every variant side by side.

  config.fit = fit.get_config()
  config.fit.output.meshes = False
  config.fit.output.render = False

  # Held-out targets fitted by every variant: 'dense' (registered frames, as in the paper's
  # tables), 'markers' or 'landmarks' (the synthetic actor only).
  config.targets = 'dense'
  config.first_seed = 0
  config.eval_time_repeats = 5
  # Jobs run at once: 1 runs them in this process; more run subprocesses (one per GPU on a
  # multi-GPU machine; on a CPU they share the cores).
  config.parallel_jobs = 1

  config.studies = ml_collections.ConfigDict()
  # Table 2: sine | relu | gelu in every MLP of the model, 100-frame sequence.
  config.studies.activation = ml_collections.ConfigDict({'num_frames': 100, 'seeds': 3})
  # Table 3: L_Model and L_A, L_K, L_Sym, L_D left out one at a time, 80-frame sequence; also
  # our anatomy smoothness and fold terms (not in the paper), each left out the same way.
  config.studies.losses = ml_collections.ConfigDict(
      {'num_frames': 80, 'seeds': 3, 'our_terms': True})
  # Fig. 18: hidden width against error and evaluation time.
  config.studies.hidden = ml_collections.ConfigDict(
      {'num_frames': 100, 'seeds': 1, 'sizes': '64,128,256,512'})
  # Table 1: GBS, AIM-global and AIM fitted to the same sequence with the full model.
  config.studies.baselines = ml_collections.ConfigDict({'num_frames': 100, 'seeds': 3})
  return config
