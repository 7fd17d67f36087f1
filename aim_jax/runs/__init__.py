"""Runs: what turns the library's results into files and reports.

learn: learn-and-evaluate (experiments/learn_model.py); fit: fit-and-report
(experiments/fit_sequence.py); retarget, edit, compare_generic: the applications' runs; reporting:
what several runs write alike (per-frame CSV, error tables, error-map grids, mesh sequences).
"""
