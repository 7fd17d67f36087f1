"""Actors: registered skin shapes with their bones, from files or made by the package."""

from __future__ import annotations

import os

from aim_jax.data import folder, synthetic
from aim_jax.data.actor import Actor, ActorError, GroundTruth, Mesh, make_actor

__all__ = ['Actor', 'ActorError', 'GroundTruth', 'Mesh', 'load_actor_source', 'make_actor']


def load_actor_source(source: str, config=None) -> Actor:
  """An actor named on the command line: 'synthetic' or a folder of meshes.

  Args:
    source: 'synthetic' (the package's procedural actor, sized by `config.actor`) or a path.
    config: the learning config (for the synthetic actor's resolution and seed).
  Raises:
    ActorError: with a one-line message naming the folder and the problem.
  """
  if source == 'synthetic':
    resolution = config.actor.resolution if config is not None else 64
    seed = config.actor.seed if config is not None else 0
    return synthetic.make_synthetic_actor(resolution=resolution, seed=seed)
  if not os.path.isdir(source):
    raise ActorError(f'{source}: no such actor folder (and not "synthetic")')
  return folder.load_actor(source)
