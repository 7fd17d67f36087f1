"""aim_jax: Anatomically Constrained Implicit Face Models (Chandran and Zoss, CVPR 2024) in JAX."""

__version__ = "0.1.0"
