"""Progress lines (aim_jax/progress.py): the line, the metrics record, durations."""

from aim_jax import progress


def test_progress_line_and_record():
  lines = []
  meter = progress.Progress(total=100, start=0, log=lines.append)
  record = meter.update(50, {'total': 1.5, 'fit': 0.5})
  meter.note('extra note')
  meter.flush()
  assert record['step'] == 50 and record['rate'] > 0 and record['eta_s'] >= 0
  assert lines[0].startswith('step 50/100  loss 1.5  [fit 0.5]') and lines[0].endswith(
      'extra note')


def test_format_duration():
  assert progress.format_duration(5) == '5s'
  assert progress.format_duration(125) == '2m05s'
  assert progress.format_duration(7260) == '2h01m'
  assert progress.format_duration(-3) == '0s'
