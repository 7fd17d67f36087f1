"""Fitting a learned AIM to performances (DESIGN.md section 6, supplementary Fig. 12)."""
