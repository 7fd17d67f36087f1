r"""Reproduces the paper's ablations (supplementary B.5: Tables 2 and 3, Fig. 14, 16 and 18; the
main paper's Table 1) and writes a report beside the paper's numbers.

  python experiments/ablate.py --config=configs/ablate.py --study=all --workdir=runs/ablate
  python experiments/ablate.py --study=losses --actor=runs/ict0_actor --workdir=runs/ict0_ablate
  python experiments/ablate.py --config=configs/ablate_quick.py --workdir=/tmp/ablate_quick

--study is all or some of activation, losses, hidden, baselines (comma separated). Every
(variant, seed) is an independent job in `<workdir>/runs/<variant>/seed_<seed>/`; a rerun skips
finished jobs and resumes unfinished ones from their checkpoints, so a killed run loses at most
a checkpoint interval. `--report_only` rewrites report.md, results.csv, plots/ and renders/
from the finished jobs.

With --distributed (experiments/distributed_flags.py) the jobs are spread over several processes
(hosts): process i runs every n-th job from the i-th, each in a subprocess (one per GPU with
`parallel_jobs`), and process 0, which holds the workdir's lock, writes the report once every
process is done. On a SLURM allocation: `srun python experiments/ablate.py ... --distributed`.
"""

import ablate_jobs  # experiments/ablate_jobs.py, beside this file.
import distributed_flags  # experiments/distributed_flags.py, beside this file.
import jax
from absl import app, flags, logging

from aim_jax import distributed
from aim_jax import workdir as workdir_lib
from aim_jax.ablation import report as report_lib
from aim_jax.ablation import runner
from aim_jax.ablation import studies as studies_lib
from aim_jax.data import load_actor_source
from aim_jax.runs.errors import define_config_file, one_line_errors, run_main

_CONFIG = define_config_file('config', 'configs/ablate.py', 'Ablation configuration file.')
_STUDY = flags.DEFINE_string('study', 'all',
                             'all, or some of activation,losses,hidden,baselines.')
_ACTOR = flags.DEFINE_string('actor', 'synthetic',
                             '"synthetic" or an actor folder with a performance.npz.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Where the jobs and the report go.',
                               required=True)
_REPORT_ONLY = flags.DEFINE_bool('report_only', False,
                                 'Only rewrite the report from the finished jobs.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  config = _CONFIG.value
  log = lambda line: print(line, flush=True)
  with one_line_errors(prefix='--study: '):
    studies = studies_lib.parse_studies(_STUDY.value)
  with one_line_errors():
    distributed_flags.initialize()
    several = distributed.process_count() > 1
    if several:
      rank, count = jax.process_index(), jax.process_count()
      log = lambda line: print(f'[process {rank}/{count}] {line}', flush=True)
    workdir_lib.check_usable(_WORKDIR.value)
    with distributed.entered_by_primary(lambda: workdir_lib.Lock(_WORKDIR.value, log),
                                        f'locking {_WORKDIR.value}'):
      jobs = runner.make_jobs(config, studies, _ACTOR.value, _WORKDIR.value)
      actor = load_actor_source(_ACTOR.value, config.learn)
      if actor.ground_truth is None:
        runner.sequence_targets(config.fit, actor, _ACTOR.value, 1, config.targets)
      if not _REPORT_ONLY.value:
        ablate_jobs.run_jobs(distributed.share(jobs), parallel=config.parallel_jobs, log=log,
                             subprocesses=several)
      distributed.barrier('ablation jobs done')
      if not distributed.is_primary():
        return
      text = report_lib.report(_WORKDIR.value, config, studies, jobs, actor, _ACTOR.value)
  log(text)


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  run_main(main)
