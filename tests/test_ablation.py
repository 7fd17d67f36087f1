"""Ablations (aim_jax/ablation): study definitions and the agreement statements on known answers.
The commands end to end: tests/end_to_end/test_ablate_command.py."""

import numpy as np
import pytest

from aim_jax.ablation import report as report_lib
from aim_jax.ablation import studies
from configs import ablate_quick


def test_variants_share_the_full_model():
  config = ablate_quick.get_config()
  runs = studies.variant_overrides(config, studies.STUDIES)
  # sine (Table 2), L_Model (Table 3), the base width (Fig. 18) and AIM (Table 1) are one run.
  assert runs['full'] == {}
  assert set(runs) == {'full', 'relu', 'gelu', 'no_L_A', 'no_L_K', 'no_L_Sym', 'no_L_D',
                       'hidden_16'}
  assert runs['no_L_A'] == {'loss.use.anatomy': False}
  assert runs['hidden_16'] == {'model.hidden': 16}
  rows = studies.rows(config, studies.STUDIES)
  assert [r.run for r in rows if r.study == 'activation'] == ['full', 'relu', 'gelu']
  assert {r.run for r in rows if r.study == 'baselines'} == {'full'}
  fits = studies.fits_needed(config, studies.STUDIES)
  # The full model fits the 4-frame sequence with every method and the 3-frame one with AIM.
  assert {k: sorted(v) for k, v in fits[('full', 0)].items()} == {
      4: ['aim', 'aim_global', 'gbs'], 3: ['aim']}
  assert fits[('relu', 0)] == {4: ['aim']}
  # Our terms (the full-size config's default) join the losses study, without a paper number.
  config.studies.losses.our_terms = True
  runs = studies.variant_overrides(config, ['losses'])
  assert runs['no_fold'] == {'loss.use.fold': False}
  assert runs['no_anatomy_smooth'] == {'loss.use.anatomy_smooth': False}
  ours = [r for r in studies.rows(config, ['losses']) if r.run in studies.OUR_LOSS_SWITCHES]
  assert [r.paper_mm for r in ours] == [None, None, None]
  assert runs['no_neutral'] == {'loss.use.neutral': False}
  # A term of ours the learning config does not weight gets no row (it would repeat 'full').
  assert 'no_bone_symmetry' not in runs
  config.learn.loss.weights.bone_symmetry = 0.1
  assert studies.variant_overrides(config, ['losses'])['no_bone_symmetry'] == {
      'loss.use.bone_symmetry': False}


def test_overrides_and_study_names_are_checked():
  config = ablate_quick.get_config()
  learn = studies.apply_overrides(config.learn, {'model.activation': 'relu'})
  assert learn.model.activation == 'relu' and config.learn.model.activation == 'sine'
  with pytest.raises(KeyError, match='model.actvation'):
    studies.apply_overrides(config.learn, {'model.actvation': 'relu'})
  with pytest.raises(ValueError, match='unknown or no study'):
    studies.parse_studies('activation,loss')
  assert studies.parse_studies('all') == list(studies.STUDIES)
  config.studies.hidden.sizes = '64,x'
  with pytest.raises(ValueError, match='sizes'):
    studies.hidden_sizes(config)


def _row_result(study, label, run, errors, paper, hidden=128, eval_ms=1.0, method='aim'):
  row = studies.Row(study, label, run, method, 10, paper)
  results = [{'hidden': hidden, 'eval_ms': eval_ms} for _ in errors]
  return report_lib.RowResult(row, list(range(len(errors))), np.asarray(errors, float), results)


def test_agreement_statements_follow_the_numbers():
  rows = [_row_result('losses', 'L_Model', 'full', [0.10, 0.11, 0.12], 0.19),
          _row_result('losses', 'no_L_A', 'no_L_A', [0.30, 0.31, 0.29], 0.29),
          _row_result('losses', 'no_L_D', 'no_L_D', [0.20, 0.21, 0.19], 0.21)]
  for r, bone in zip(rows, (2.0, 9.0, 3.0)):
    for result in r.results:
      result['anatomy'] = {name: {'unconstrained': {'mean': bone}}
                           for name in ('bone_mm', 'thickness_mm')}
  text = ' '.join(report_lib.agreement('losses', rows))
  assert ('Removing L_A hurts the recovered anatomy most: agrees (worst bone error no_L_A, '
          '9.00 mm; full L_Model 2.00 mm)') in text
  assert ('bone error where unconstrained, best first): L_Model 2.00, no_L_D 3.00, no_L_A 9.00'
          in text)
  assert ('Full L_Model best (the paper\'s claim): agrees; L_Model against no_L_D: gap 0.090 mm'
          in text)
  assert 'Removing L_A hurts most (the paper\'s claim): agrees' in text
  assert 'ours agrees' in text
  # Swap: now no_L_D is best and L_Model worst.
  rows[0].errors, rows[2].errors = np.array([0.4, 0.41, 0.39]), np.array([0.05, 0.06, 0.04])
  text = ' '.join(report_lib.agreement('losses', rows))
  assert 'Full L_Model best (the paper\'s claim): disagrees' in text
  assert 'Removing L_A hurts most (the paper\'s claim): disagrees; worst L_Model' in text
  assert 'ours differs' in text
  hidden = [_row_result('hidden', 'hidden 64', 'hidden_64', [0.3], None, 64, 1.0),
            _row_result('hidden', 'hidden 128', 'full', [0.2], None, 128, 2.0)]
  text = ' '.join(report_lib.agreement('hidden', hidden))
  assert 'Error falls as the width grows (the paper\'s Fig. 18): agrees' in text
  assert 'Evaluation time grows with the width: agrees' in text
