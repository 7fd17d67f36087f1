"""The ablation studies: which learning-config overrides each variant applies.

A variant is a set of overrides of the learning config (dotted key -> value). Variants equal
across studies (the full model is Table 2's siren, Table 3's L_Model, the base hidden size and
Table 1's AIM) are learned once per seed and shared.

The paper's numbers (mean fitting error in mm) are those printed in the supplementary (Tables 2
and 3) and the main paper (Table 1, see shared/paper/aim_method_notes.md); Fig. 18 has no
numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import ml_collections

STUDIES = ('activation', 'losses', 'hidden', 'baselines')
FULL = 'full'

# Table 2 (100 frames): mean error in mm per activation.
PAPER_ACTIVATION_MM = {'sine': 0.21, 'relu': 0.62, 'gelu': 0.71}
# Table 3 (80 frames): mean error in mm with one term of L_Model left out.
PAPER_LOSSES_MM = {FULL: 0.19, 'no_L_A': 0.29, 'no_L_K': 0.22, 'no_L_Sym': 0.24,
                   'no_L_D': 0.21}
# Table 1 (main paper): mean fitting error in mm.
PAPER_BASELINES_MM = {'gbs': 0.83, 'aim_global': 0.86, 'aim': 0.31}

# Table 3's terms and the learning-config switch of each.
LOSS_SWITCHES = {'no_L_A': 'loss.use.anatomy', 'no_L_K': 'loss.use.skinning',
                 'no_L_Sym': 'loss.use.symmetry', 'no_L_D': 'loss.use.thickness'}
# Our terms of L_Model (not in the paper; issue 11) and their switches: left out one at a time in
# the same study, with no paper number.
# Each with the weights (loss.weights.*) its switch turns off: a variant whose weights are all 0 in
# the learning config would repeat the full model, and is left out.
OUR_LOSS_TERMS = {
    'no_anatomy_smooth': ('loss.use.anatomy_smooth', ('bone_smooth', 'normal_smooth')),
    'no_fold': ('loss.use.fold', ('fold',)),
    'no_bone_symmetry': ('loss.use.bone_symmetry', ('bone_symmetry',)),
    'no_neutral': ('loss.use.neutral', ('neutral',)),
}
OUR_LOSS_SWITCHES = {name: switch for name, (switch, _) in OUR_LOSS_TERMS.items()}
# The order in which the paper's Table 3 ranks the variants, worst first.
PAPER_LOSSES_ORDER = ('no_L_A', 'no_L_Sym', 'no_L_K', 'no_L_D', FULL)


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of a study's table.

  Attributes:
    study: the study name.
    label: the row's label in the table ('relu', 'no_L_A', 'hidden 64', 'gbs', ...).
    run: the learned variant it uses (a key of `variants`).
    method: the fitting method evaluated ('aim', 'aim_global' or 'gbs').
    num_frames: length of the held-out sequence fitted.
    paper_mm: the paper's number for this row, or None.
  """
  study: str
  label: str
  run: str
  method: str
  num_frames: int
  paper_mm: Optional[float]


def parse_studies(study: str) -> List[str]:
  """'all' or a comma-separated list of study names; ValueError naming an unknown one."""
  names = list(STUDIES) if study == 'all' else [s.strip() for s in study.split(',') if s.strip()]
  unknown = [s for s in names if s not in STUDIES]
  if unknown or not names:
    raise ValueError(f'unknown or no study {unknown}; expected all or some of {STUDIES}')
  return names


def _ints(text: str, field: str) -> List[int]:
  try:
    values = [int(v) for v in str(text).split(',') if v.strip()]
  except ValueError:
    raise ValueError(f'{field}: expected comma-separated integers, got {text!r}') from None
  if not values or min(values) < 1:
    raise ValueError(f'{field}: expected positive integers, got {text!r}')
  return values


def hidden_sizes(config: ml_collections.ConfigDict) -> List[int]:
  return _ints(config.studies.hidden.sizes, 'config.studies.hidden.sizes')


def loss_switches(config: ml_collections.ConfigDict) -> Dict[str, str]:
  """The losses study's variants (name -> switch): the paper's, and ours when
  `config.studies.losses.our_terms` (each only where the learning config weights its terms)."""
  if not config.studies.losses.get('our_terms', True):
    return dict(LOSS_SWITCHES)
  weights = config.learn.loss.weights
  ours = {name: switch for name, (switch, terms) in OUR_LOSS_TERMS.items()
          if any(weights.get(term, 0.0) for term in terms)}
  return {**LOSS_SWITCHES, **ours}


def variant_overrides(config: ml_collections.ConfigDict, studies: Sequence[str]
                      ) -> Dict[str, Dict[str, object]]:
  """The learned variants the studies need: run name -> overrides of the learning config.

  The full model (no overrides) is always included; it is every study's reference.
  """
  base = config.learn
  runs: Dict[str, Dict[str, object]] = {FULL: {}}
  if 'activation' in studies:
    for activation in PAPER_ACTIVATION_MM:
      if activation != base.model.activation:
        runs[activation] = {'model.activation': activation}
  if 'losses' in studies:
    for name, key in loss_switches(config).items():
      runs[name] = {key: False}
  if 'hidden' in studies:
    for size in hidden_sizes(config):
      if size != base.model.hidden:
        runs[f'hidden_{size}'] = {'model.hidden': size}
  return runs


def rows(config: ml_collections.ConfigDict, studies: Sequence[str]) -> List[Row]:
  """Every table row of the studies, in the order the report prints them."""
  base = config.learn
  s = config.studies
  out = []
  if 'activation' in studies:
    for activation, paper in PAPER_ACTIVATION_MM.items():
      run = FULL if activation == base.model.activation else activation
      out.append(Row('activation', activation, run, 'aim', s.activation.num_frames, paper))
  if 'losses' in studies:
    for name in (FULL,) + tuple(loss_switches(config)):
      label = 'L_Model' if name == FULL else name
      out.append(Row('losses', label, name, 'aim', s.losses.num_frames,
                     PAPER_LOSSES_MM.get(name)))
  if 'hidden' in studies:
    for size in hidden_sizes(config):
      run = FULL if size == base.model.hidden else f'hidden_{size}'
      out.append(Row('hidden', f'hidden {size}', run, 'aim', s.hidden.num_frames, None))
  if 'baselines' in studies:
    for method, paper in PAPER_BASELINES_MM.items():
      out.append(Row('baselines', method, FULL, method, s.baselines.num_frames, paper))
  return out


def seeds_of(config: ml_collections.ConfigDict, study: str) -> List[int]:
  """The seeds of one study: `config.studies.<study>.seeds` seeds from `config.first_seed`."""
  count = int(config.studies[study].seeds)
  if count < 1:
    raise ValueError(f'config.studies.{study}.seeds must be >= 1, got {count}')
  return list(range(config.first_seed, config.first_seed + count))


def fits_needed(config: ml_collections.ConfigDict, studies: Sequence[str]
                ) -> Dict[Tuple[str, int], Dict[int, List[str]]]:
  """What each (run, seed) job must fit: {(run, seed): {num_frames: [methods]}}."""
  jobs: Dict[Tuple[str, int], Dict[int, List[str]]] = {}
  for row in rows(config, studies):
    for seed in seeds_of(config, row.study):
      fits = jobs.setdefault((row.run, seed), {})
      methods = fits.setdefault(row.num_frames, [])
      if row.method not in methods:
        methods.append(row.method)
  return jobs


def apply_overrides(config: ml_collections.ConfigDict, overrides: Dict[str, object]
                    ) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted-key overrides set; KeyError naming an unknown key."""
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = config
    for part in parents:
      node = node[part]
    if leaf not in node:
      raise KeyError(f'override {key!r}: no such field in the learning config')
    node[leaf] = value
  return config
