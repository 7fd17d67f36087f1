"""A fitted sequence held chunk by chunk: consecutive frame ranges, each with its arrays in an
.npz file (`<method>/chunk_XXX/result.npz`, what `fit.fit_sequence_chunks` and the GBS method
write) or in memory.

Read a chunk at a time, a sequence of any length costs the memory of one chunk: the fitting run
(`runs/fit.py`) writes fit.npz (`files.write_npz_chunks`), the meshes and the evaluation
(`methods.evaluate_chunks`) this way. `Chunks.load` concatenates everything in memory.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

RESULT = 'result.npz'  # A chunk's arrays: <folder>/chunk_XXX/result.npz.


def result_path(folder: str, index: int) -> str:
  """<folder>/chunk_XXX/result.npz of chunk `index`."""
  return os.path.join(folder, f'chunk_{index:03d}', RESULT)


@dataclasses.dataclass(frozen=True)
class Chunks:
  """A sequence's arrays split along frames.

  Attributes:
    ranges: ((start, stop), ...) consecutive frame ranges from frame 0.
    sources: per range, an .npz path or a dict of arrays. Frame-major arrays ('frames' (n, V, 3)
      mm, 'coefficients', jaws, codes, GBS 'weights') have the range's n frames first; per-chunk
      arrays (the refined camera, (1, 6) and (1, 3)) one row per chunk.
  """
  ranges: Tuple[Tuple[int, int], ...]
  sources: Tuple[Union[str, Dict[str, np.ndarray]], ...]

  @property
  def num_frames(self) -> int:
    return self.ranges[-1][1] if self.ranges else 0

  def read(self, index: int, keys: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """The arrays (all, or `keys`) of chunk `index`."""
    source = self.sources[index]
    if isinstance(source, str):
      with np.load(source) as data:
        return {k: data[k] for k in (data.files if keys is None else keys)}
    return {k: source[k] for k in (list(source) if keys is None else keys)}

  def keys(self) -> list:
    """The array names (those of the first chunk; every chunk has the same)."""
    source = self.sources[0]
    if isinstance(source, str):
      with np.load(source) as data:
        return list(data.files)
    return list(source)

  def files(self) -> list:
    """The chunks' .npz paths (ValueError when a chunk is held in memory)."""
    if not all(isinstance(s, str) for s in self.sources):
      raise ValueError('these chunks are held in memory, not in files')
    return list(self.sources)

  def frames(self, start: int, stop: int, key: str = 'frames') -> np.ndarray:
    """Frames start..stop-1 of the frame-major array `key`, from the chunks that hold them."""
    parts = [self.read(i, [key])[key][max(start, a) - a:min(stop, b) - a]
             for i, (a, b) in enumerate(self.ranges) if a < stop and start < b]
    return np.concatenate(parts) if len(parts) != 1 else parts[0]

  def frames_at(self, indices: Sequence[int], key: str = 'frames') -> np.ndarray:
    """The frames of the given indices of the frame-major array `key`, stacked."""
    return np.stack([self.frames(int(j), int(j) + 1, key)[0] for j in indices])

  def load(self, keys: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Every chunk's arrays (all, or `keys`) concatenated: the whole sequence in memory."""
    keys = self.keys() if keys is None else keys
    return {k: np.concatenate([self.read(i, [k])[k] for i in range(len(self.ranges))])
            for k in keys}

  def non_finite(self) -> list:
    """The names of floating arrays with a NaN or infinity in some chunk (sorted), reading one
    chunk at a time."""
    bad = set()
    for index in range(len(self.ranges)):
      bad.update(k for k, v in self.read(index).items()
                 if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)))
    return sorted(bad)


def in_memory(result: Dict[str, np.ndarray]) -> Chunks:
  """A whole in-memory result (frame-major arrays, 'frames' (F, V, 3) mm) as one chunk."""
  return Chunks(((0, int(np.shape(result['frames'])[0])),), (result,))
