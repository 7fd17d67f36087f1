"""A learned model's directory: the one module that reads and writes it.

Layout of a model directory (written by learning, `runs/learn.py`, or by editing, `runs/edit.py`):
  model.json        {'spec': AIMSpec fields, 'config': the learning config, 'actor': {'name',
                    'source', 'shape_names', 'num_vertices'}} and, for an edited model,
                    'edit': {'file', 'base_model', 'history', 'num_operations'}
  constraints.npz   the actor's sparse anatomical constraints (`SparseConstraints`)
  checkpoints/      orbax checkpoints of the learning state (the params are restored from the
                    latest one)
  edit.npz          an edited model's analytic operations (`models/edit_field.py`)

`load_model` returns the params and the edit apart: the edit is not trained and is passed to
`aim.anatomy` / `aim.evaluate_chunked` beside the params.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Callable, Dict, List, Optional

import jax
import ml_collections
import numpy as np

from aim_jax import files, learning, train_loop
from aim_jax.anatomy.constraints import SparseConstraints
from aim_jax.data import load_actor_source
from aim_jax.data.actor import Actor
from aim_jax.fitting import basis as basis_lib
from aim_jax.models import aim, edit_field

MODEL_JSON = 'model.json'
CONSTRAINTS_NPZ = 'constraints.npz'
EDIT_NPZ = 'edit.npz'
CHECKPOINTS = 'checkpoints'


class ModelDirError(ValueError):
  """A model directory that cannot be written as asked; the message names the directory."""


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """A learned model read from its directory.

  Attributes:
    params: the trained AIM parameters (`aim.init`'s pytree; never an edit).
    spec: its AIMSpec.
    info: model.json's content.
    edit: an edited model's operations (`edit_field`), None for an unedited model.
  """
  params: Dict
  spec: aim.AIMSpec
  info: Dict
  edit: Optional[List[Dict[str, np.ndarray]]] = None

  @property
  def config(self) -> ml_collections.ConfigDict:
    """The learning config the model was learned with."""
    return ml_collections.ConfigDict(self.info['config'])


def save_model(workdir: str, spec: aim.AIMSpec, config: ml_collections.ConfigDict, actor: Actor,
               constraints: SparseConstraints):
  """Writes what `load_model` needs beside the checkpoints: model.json (atomically) and
  constraints.npz."""
  os.makedirs(workdir, exist_ok=True)
  info = {'spec': dataclasses.asdict(spec), 'config': config.to_dict(),
          'actor': {'name': actor.name, 'source': actor.source, 'shape_names':
                    list(actor.shape_names), 'num_vertices': actor.num_vertices}}
  write_constraints(workdir, constraints)
  files.write_json(os.path.join(workdir, MODEL_JSON), info)


def read_constraints(workdir: str, num_vertices: int) -> Optional[SparseConstraints]:
  """The constraints.npz of a model directory when it exists and is for `num_vertices`
  vertices, else None."""
  path = os.path.join(workdir, CONSTRAINTS_NPZ)
  if not os.path.exists(path):
    return None
  constraints = SparseConstraints.from_npz(path)
  return constraints if constraints.num_vertices == num_vertices else None


def is_edited(workdir: str) -> bool:
  """True when workdir is an edited model (its model.json names an edit)."""
  path = os.path.join(workdir, MODEL_JSON)
  return os.path.isfile(path) and bool(files.read_json(path).get('edit'))


def write_constraints(workdir: str, constraints: SparseConstraints):
  """constraints.npz (atomically): the sparse constraints a model is learned with."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONSTRAINTS_NPZ)
  tmp = os.path.join(workdir, '.constraints.tmp.npz')
  constraints.to_npz(tmp)
  os.replace(tmp, path)


def read_info(workdir: str) -> Dict:
  """model.json's content; FileNotFoundError (one line, naming the file) when it is missing."""
  path = os.path.join(workdir, MODEL_JSON)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: missing; {workdir} is not a model directory')
  return files.read_json(path)


def spec_of(info: Dict) -> aim.AIMSpec:
  """The AIMSpec recorded in model.json's content."""
  fields = dict(info['spec'])
  for key in ('center', 'pivot'):
    fields[key] = tuple(fields[key])
  return aim.AIMSpec(**fields)


def restore_params(workdir: str, spec: aim.AIMSpec, config: ml_collections.ConfigDict,
                   log: Optional[Callable[[str], None]] = print) -> Dict:
  """Parameters of the newest readable checkpoint in workdir/checkpoints (an unreadable newer
  one is reported and set aside, see `train_loop.Checkpoints`)."""
  folder = os.path.join(workdir, CHECKPOINTS)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'{folder}: no checkpoint to restore')
  optimizer = learning.make_optimizer(config)
  abstract = jax.eval_shape(lambda: learning.create_state(config, spec, optimizer))
  with train_loop.Checkpoints(workdir, log=log, process_local=True) as checkpoints:
    state, step = checkpoints.restore(abstract)
  if step is None:
    raise FileNotFoundError(f'{folder}: no checkpoint to restore')
  return state.params


def read_edit(workdir: str, info: Dict) -> Optional[List[Dict[str, np.ndarray]]]:
  """An edited model's operations (from the edit npz model.json names), None if unedited."""
  if not info.get('edit'):
    return None
  path = os.path.join(workdir, info['edit'].get('file', EDIT_NPZ))
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: missing; {os.path.join(workdir, MODEL_JSON)} says '
                            f'{workdir} is an edited model')
  with np.load(path) as data:
    return edit_field.from_npz_arrays(data, path)


def load_model(workdir: str) -> LoadedModel:
  """Loads a learned (or edited) model: params of the latest checkpoint, spec, info, edit."""
  info = read_info(workdir)
  spec = spec_of(info)
  params = restore_params(workdir, spec, ml_collections.ConfigDict(info['config']))
  return LoadedModel(params=params, spec=spec, info=info, edit=read_edit(workdir, info))


def actor_of_model(info: Dict) -> Actor:
  """Re-creates the actor a model was learned on, from what `save_model` recorded."""
  config = ml_collections.ConfigDict(info['config'])
  source = info['actor']['source']
  actor = load_actor_source(source, config)
  if actor.num_vertices != info['actor']['num_vertices']:
    raise ValueError(f'{source}: the actor now has {actor.num_vertices} vertices but the model '
                     f'was learned on {info["actor"]["num_vertices"]}')
  return actor


def fit_model(model: LoadedModel, actor: Optional[Actor] = None) -> basis_lib.FitModel:
  """A loaded model ready for fitting: its actor (re-created unless given) and cached bases."""
  actor = actor or actor_of_model(model.info)
  return basis_lib.make_fit_model(model.params, model.spec, model.info, actor, model.edit)


def load_fit_model(workdir: str, actor: Optional[Actor] = None) -> basis_lib.FitModel:
  """`load_model` then `fit_model`: a model directory ready for fitting."""
  return fit_model(load_model(workdir), actor)


def write_edited_model(base_dir: str, out_dir: str, edit: List[Dict], info: Dict,
                       description: Dict) -> str:
  """Writes an edited model directory: base checkpoints copied, model.json + edit.npz.

  Args:
    base_dir: the model it was made from (a learned model directory or an edited one).
    out_dir: the new directory (must not hold a model already).
    edit: every operation of the edited model (the base's, then the new ones).
    info: the base model's model.json content.
    description: this edit's description (appended to the base's history).
  Returns:
    out_dir.
  Raises:
    ModelDirError: `out_dir` is `base_dir` or holds a model; FileNotFoundError: `base_dir` has
    no checkpoints.
  """
  if os.path.abspath(base_dir) == os.path.abspath(out_dir):
    raise ModelDirError(f'{out_dir}: the edited model needs its own directory, not the base '
                        'model\'s')
  if os.path.exists(os.path.join(out_dir, MODEL_JSON)):
    raise ModelDirError(f'{out_dir}: already holds a model; the edited model needs a new '
                        'directory')
  source = os.path.join(base_dir, CHECKPOINTS)
  if not os.path.isdir(source):
    raise FileNotFoundError(f'{source}: missing; {base_dir} is not a learned model directory')
  os.makedirs(out_dir, exist_ok=True)
  target = os.path.join(out_dir, CHECKPOINTS)
  if os.path.exists(target):
    shutil.rmtree(target)
  shutil.copytree(source, target)
  if os.path.exists(os.path.join(base_dir, CONSTRAINTS_NPZ)):
    shutil.copy2(os.path.join(base_dir, CONSTRAINTS_NPZ), out_dir)
  files.write_npz(os.path.join(out_dir, EDIT_NPZ), compressed=False,
                  **edit_field.to_npz_arrays(edit))
  history = list(info.get('edit', {}).get('history', [])) + [description]
  new_info = dict(info)
  new_info['edit'] = {'file': EDIT_NPZ, 'base_model': os.path.abspath(base_dir),
                      'history': history, 'num_operations': len(edit)}
  files.write_json(os.path.join(out_dir, MODEL_JSON), new_info)
  return out_dir
