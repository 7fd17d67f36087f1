"""Anatomy under the skin: sparse constraints from fitted bones."""
