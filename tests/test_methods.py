"""The fitting methods (aim_jax/fitting/methods.py): parsing config.methods, synthetic sequence
targets of each kind, and what the methods' errors are measured against."""

import os
import types

import numpy as np
import pytest

from aim_jax.data import synthetic_performance
from aim_jax.fitting import baselines, methods, synthetic_targets
from aim_jax.fitting import basis as basis_lib
from aim_jax.fitting import chunks as chunks_lib
from aim_jax.fitting import fit as fit_lib
from aim_jax.fitting import targets as targets_lib
from aim_jax.models import aim
from aim_jax.runs import identity
from configs import fit_test


def test_unknown_fit_method_is_refused():
  config = fit_test.get_config()
  config.methods = 'aim,foo'
  with pytest.raises(ValueError, match="unknown or no method.*foo"):
    methods.parse_methods(config)
  config.methods = 'gbs, aim'
  assert methods.parse_methods(config) == ['gbs', 'aim']


def test_empty_methods_are_refused_naming_the_choices():
  config = fit_test.get_config()
  config.methods = ' , '
  with pytest.raises(ValueError, match=r"config.methods: unknown or no method\(s\) \[\]; "
                     r"expected \('aim', 'aim_global', 'gbs'\)"):
    methods.parse_methods(config)


@pytest.mark.parametrize('kind, count', [('dense', None), ('markers', 40), ('landmarks', 200)])
def test_synthetic_sequence_targets_of_each_kind(actor, kind, count):
  config = fit_test.get_config()
  config.synthetic.kind = kind
  targets, truth = methods.synthetic_sequence_targets(config, actor)
  frames = config.synthetic.num_frames
  assert set(targets) == {kind} and targets[kind].num_frames == frames
  expected = int(actor.region.sum()) if kind == 'dense' else count
  assert targets[kind].points.count == expected
  assert truth['frames'].shape == (frames, actor.num_vertices, 3)
  assert truth['jaw_rotation'].shape == (frames, 3, 3)
  assert truth['jaw_translation'].shape == (frames, 3)
  if kind == 'dense':  # The targets are the true frames on the region.
    np.testing.assert_allclose(targets['dense'].values, truth['frames'][:, actor.region],
                               atol=1e-4)
  config.synthetic.kind = 'mesh'
  with pytest.raises(ValueError, match="synthetic.kind must be .*'mesh'"):
    methods.synthetic_sequence_targets(config, actor)


def test_evaluate_methods_against_truth_dense_targets_or_nothing(tiny_actor):
  frames = np.asarray(tiny_actor.shapes, np.float32)
  shifted = frames + np.array([0.0, 0.0, 2.0], np.float32)  # 2 mm off everywhere.
  results = {'gbs': {'frames': shifted}}
  against_truth = methods.evaluate_methods(results, {'frames': frames}, {}, tiny_actor)
  assert against_truth['error_against'] == 'ground_truth'
  assert against_truth['error_mm']['gbs']['mean'] == pytest.approx(2.0, abs=1e-5)
  assert against_truth['error_mm']['gbs']['count'] == 3 * int(tiny_actor.region.sum())
  assert against_truth['jaw'] == {}  # No method fitted jaws.
  # Dense targets on half the vertices: only those are counted (and only in the region).
  half = np.arange(tiny_actor.num_vertices) % 2 == 0
  dense = {'dense': targets_lib.dense_targets(frames, half)}
  against_dense = methods.evaluate_methods(results, None, dense, tiny_actor)
  assert against_dense['error_against'] == 'dense_targets'
  assert against_dense['error_mm']['gbs']['count'] == 3 * int((half & tiny_actor.region).sum())
  np.testing.assert_allclose(against_dense['per_frame_mm']['gbs'], 2.0, atol=1e-5)
  nothing = methods.evaluate_methods(results, None, {}, tiny_actor)
  assert nothing == {'error_against': None, 'error_mm': {}, 'per_frame_mm': {}, 'jaw': {}}


def test_aim_settings_depend_on_the_targets(actor):
  config = fit_test.get_config()
  config.loss.coefficient_smooth = 5.0
  config.model.sparse_w0 = 1.5
  dense = {'dense': targets_lib.dense_targets(actor.shapes[:2])}
  sparse = {'markers': synthetic_targets.markers(actor.neutral, actor.faces, actor.region,
                                                 actor.shapes[:2], count=10)}
  with_dense = methods.config_for_targets(config, {**dense, **sparse})
  assert with_dense.loss.coefficient_smooth == 0.0 and with_dense.model.w0 == config.model.w0
  only_sparse = methods.config_for_targets(config, sparse)
  assert only_sparse.model.w0 == 1.5
  # The field weights are those of loss.field_reference_markers markers, scaled to the 10 given.
  config.loss.field_reference_markers = 30
  only_sparse = methods.config_for_targets(config, sparse)
  assert only_sparse.loss.coefficient_smooth == pytest.approx(15.0)
  assert only_sparse.loss.coefficient_shrink == pytest.approx(3 * config.loss.coefficient_shrink)
  config.loss.field_reference_markers = 0
  assert methods.config_for_targets(config, sparse).loss.coefficient_smooth == 5.0
  # Markers alone take train.marker_steps / marker_learning_rate when set; dense targets not.
  config.train.marker_steps, config.train.marker_learning_rate = 7, 0.02
  only_sparse = methods.config_for_targets(config, sparse)
  assert (only_sparse.train.num_steps, only_sparse.train.learning_rate) == (7, 0.02)
  with_dense = methods.config_for_targets(config, {**dense, **sparse})
  assert with_dense.train.num_steps == config.train.num_steps
  config.train.marker_steps, config.train.marker_learning_rate = 0, 0.0
  assert config.model.w0 != 1.5  # The caller's config is left alone.
  camera = synthetic_targets.frontal_camera(actor.neutral)
  landmarks = {'landmarks': synthetic_targets.landmarks(
      actor.neutral, actor.faces, actor.region, actor.shapes[:2], camera, count=20)}
  # Landmarks alone take the field terms at loss.landmark_field_scale of their weights, with F_W
  # at model.w0 (not sparse_w0) and the general steps; with markers beside them they follow
  # field_kinds (markers: no terms); 0 turns the landmarks' own scale off.
  plain = methods.config_for_targets(config, landmarks)
  scale = config.loss.landmark_field_scale
  assert 0.0 < scale < 1.0
  assert plain.loss.coefficient_smooth == pytest.approx(5.0 * scale)
  assert plain.loss.coefficient_shrink == pytest.approx(config.loss.coefficient_shrink * scale)
  assert fit_lib.field_terms_apply(fit_lib.kinds_of(plain, 'field_kinds'), landmarks)
  assert plain.model.w0 == config.model.w0
  # Landmarks alone run at most train.landmark_steps (0: num_steps); other targets num_steps.
  config.train.num_steps, config.train.landmark_steps = 40, 7
  assert methods.config_for_targets(config, landmarks).train.num_steps == 7
  for other in (sparse, {**sparse, **landmarks}, dense):
    assert methods.config_for_targets(config, other).train.num_steps == 40
  config.train.landmark_steps = 100  # A cap: a shorter general budget is kept.
  assert methods.config_for_targets(config, landmarks).train.num_steps == 40
  config.train.landmark_steps = 0
  assert methods.config_for_targets(config, landmarks).train.num_steps == 40
  assert methods.config_for_targets(config, {**sparse, **landmarks}).loss.coefficient_smooth == 0
  config.loss.landmark_field_scale = 0.0
  off = methods.config_for_targets(config, landmarks)
  assert off.loss.coefficient_smooth == 0.0 and off.model.w0 == config.model.w0
  # Landmarks alone hold the coefficients by their own magnitude weight; other targets keep it.
  config.loss.landmark_coefficients = 7e-3
  assert methods.config_for_targets(config, landmarks).loss.coefficients == 7e-3
  for other in (sparse, {**sparse, **landmarks}, dense):
    assert methods.config_for_targets(config, other).loss.coefficients == config.loss.coefficients
  config.loss.field_kinds = 'markers,landmarks'
  assert methods.config_for_targets(config, landmarks).model.w0 == 1.5
  # Dense targets fit at their own learning rate; sparse ones keep the general one.
  config.train.learning_rate, config.train.dense_learning_rate = 1e-3, 5e-3
  assert with_dense.train.learning_rate == fit_test.get_config().train.dense_learning_rate
  assert methods.config_for_targets(config, {**dense, **sparse}).train.learning_rate == 5e-3
  assert methods.config_for_targets(config, sparse).train.learning_rate == 1e-3
  assert methods.config_for_targets(config, landmarks).train.learning_rate == 1e-3
  assert config.train.learning_rate == 1e-3


@pytest.mark.parametrize('kind', ['dense', 'markers', 'landmarks'])
def test_streamed_synthetic_targets_and_truth_are_the_in_memory_ones(actor, kind):
  config = fit_test.get_config()
  config.synthetic.kind = kind
  config.synthetic.num_frames = 130  # Two blocks of frames.
  targets, truth = methods.synthetic_sequence_targets(config, actor)
  streamed, streamed_truth = methods.synthetic_sequence_targets(config, actor, stream=True)
  assert isinstance(streamed_truth['frames'], synthetic_performance.PerformanceFrames)
  np.testing.assert_array_equal(np.asarray(streamed[kind].values), np.asarray(targets[kind].values))
  np.testing.assert_array_equal(np.asarray(streamed[kind].visible),
                                np.asarray(targets[kind].visible))
  played = synthetic_performance.make_performance(actor, 130, config.synthetic.seed)
  np.testing.assert_array_equal(truth['frames'], played.frames)
  for key in truth:
    np.testing.assert_array_equal(np.asarray(streamed_truth[key]), truth[key])
  # The same fitting identity either way (a streamed run resumes an in-memory run's workdir).
  assert identity.targets_hash(streamed, streamed_truth) == identity.targets_hash(targets, truth)


@pytest.mark.parametrize('kind', ['markers', 'dense'])
def test_gbs_fits_each_chunk_on_its_own_in_memory_or_in_files(tmp_path, actor, kind):
  spec = aim.make_spec(actor.neutral, actor.pivot, actor.num_shapes)
  gbs = basis_lib.gbs_basis(actor.shapes, actor.neutral, spec)
  model = basis_lib.FitModel(params={}, spec=None, info={}, actor=actor, basis=gbs,
                             gbs_basis=gbs)
  config = fit_test.get_config()
  config.synthetic.kind = kind
  config.synthetic.num_frames = 9
  config.train.chunk_frames = 4  # Shapes test_compile_once.py does not compile before this.
  targets, _ = methods.synthetic_sequence_targets(config, actor)
  in_memory = methods.fit_method('gbs', config, model, targets, str(tmp_path))
  assert not (tmp_path / 'gbs').exists()
  chunks = methods.fit_method_chunks('gbs', config, model, targets, str(tmp_path))
  assert chunks.ranges == ((0, 4), (4, 8), (8, 9))
  assert sorted(p.name for p in (tmp_path / 'gbs').iterdir()) == [
      'chunk_000', 'chunk_001', 'chunk_002']
  streamed = chunks.load()
  assert list(streamed) == ['frames', 'weights']
  for key in streamed:  # Bit for bit: the same chunks either way.
    np.testing.assert_array_equal(streamed[key], in_memory[key])
  # Frames are independent given the basis: every frame at once gives the same weights but for
  # the float32 rounding of the batched solve.
  whole = baselines.fit_gbs(gbs, targets, ridge=config.gbs.ridge,
                            iterations=config.gbs.iterations)
  np.testing.assert_allclose(in_memory['weights'], whole, rtol=1e-4, atol=1e-4)


def test_evaluating_chunks_holds_a_chunk_at_a_time(tmp_path):
  import tracemalloc
  vertices, size, count = 400, 50, 20  # 20 chunks of 50 frames.
  rng = np.random.default_rng(0)
  truth = np.lib.format.open_memmap(str(tmp_path / 'truth.npy'), 'w+', np.float32,
                                    (size * count, vertices, 3))  # Pages, not traced memory.
  truth[:] = rng.standard_normal(truth.shape)
  ranges, paths = [], []
  for index in range(count):
    path = chunks_lib.result_path(str(tmp_path / 'fit'), index)
    os.makedirs(os.path.dirname(path))
    frames = truth[index * size:(index + 1) * size]
    np.savez(path, frames=frames + rng.normal(0.0, 0.1, frames.shape).astype(np.float32))
    ranges.append((index * size, (index + 1) * size))
    paths.append(path)
  chunks = chunks_lib.Chunks(tuple(ranges), tuple(paths))
  actor = types.SimpleNamespace(num_vertices=vertices, region=np.arange(vertices) % 3 > 0,
                                pivot=np.zeros(3))
  os.makedirs(tmp_path / 'scratch')
  tracemalloc.start()
  try:
    streamed = methods.evaluate_chunks({'m': chunks}, {'frames': truth}, {}, actor, size,
                                       str(tmp_path / 'scratch'))
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  chunk_bytes = size * vertices * 3 * 8  # A chunk's frames in float64, as errors are computed.
  # A few chunks' worth and the order statistics' digit counts (~2.5 MB), not the 20 chunks.
  assert peak < 6 * chunk_bytes + 4e6, peak
  whole = methods.evaluate_methods({'m': chunks.load()}, {'frames': np.asarray(truth)}, {},
                                   actor)
  assert streamed['error_mm'] == whole['error_mm']
  np.testing.assert_array_equal(streamed['per_frame_mm']['m'], whole['per_frame_mm']['m'])
