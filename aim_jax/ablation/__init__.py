"""Ablation studies of the supplementary (B.5, Tables 1-3, Fig. 14, 16, 18) as resumable jobs.

studies: what each study varies, and the paper's numbers to compare with.
runner: one (variant, seed) job: learn, fit the held-out sequence, evaluate; resumable.
timing: evaluation time of learned models (Fig. 18).
report: gathers the jobs into results.csv, report.md, plots and renders.
Scheduling the jobs (in one process, or as subprocesses one per GPU) is
`experiments/ablate_jobs.py`.
"""
