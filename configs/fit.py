"""Fitting a learned AIM to a sequence (supplementary Fig. 12): the default configuration.

The paper fits with 4-layer F_T / F_W MLPs, regularisers coefficients 0.75 and temporal 0.05,
1e4 iterations at learning rate 1e-3. Our losses are in mm^2 (means over points), so the
regulariser weights are ours, tuned on the synthetic actor; the step count is what reaches the
converged error on the 100-frame synthetic sequence (see benchmarks/fit_sequence.py).
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Methods fitted to the same targets: 'aim' (per-point F_W), 'aim_global' (F_W ignoring c),
  # 'gbs' (global blendshapes of the learning shapes), comma separated.
  config.methods = 'aim,aim_global,gbs'

  config.model = ml_collections.ConfigDict()
  config.model.code_dim = 32
  config.model.hidden = 128
  config.model.depth = 3            # Hidden layers: 4 linear layers, as in the paper.
  config.model.activation = 'sine'
  # Low frequency: F_W interpolates between sparse markers (w0 10 -> 3: markers 0.43 -> 0.18 mm,
  # landmarks 0.38 -> 0.33 mm, dense 0.040 -> 0.058 mm on the synthetic sequence). Dense fits at
  # w0 10 are better at 3,000 steps but blow up in long fits and lose on ICT identity 41
  # (README, "Fitting speed"), so dense keeps 3 too.
  config.model.w0 = 3.0
  # AIM's F_W frequency when only sparse 3D markers are fitted (loss.field_kinds): lower still,
  # a smoother field between the markers (ICT, 150 noisy markers: see the README). Dense and
  # landmark fits keep w0 (ICT dense 0.23 mm at 3, 0.33 mm at 1; 1,000 landmarks 1.38 mm at 3
  # without the field terms, 2.01 mm at 1 with them).
  config.model.sparse_w0 = 1.0
  # F_W of 'aim': 'separable' (A(c) g(z), ~40x faster per step on CPU, as accurate on the
  # synthetic sequence; benchmarks/fit_sequence.py) | 'per_point' (the paper's MLP on [z, c]).
  config.model.variant = 'separable'
  config.model.rank = 32
  config.model.head_pose = False    # Rigid head transform per frame (unstabilised targets).
  config.model.translation_scale = 10.0
  config.model.code_init_std = 0.1

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 3000
  config.train.learning_rate = 3e-3
  # AIM's peak learning rate when dense targets are fitted (`methods.config_for_targets`):
  # demo held-out dense fit 0.068 -> 0.057 mm (seeds 0 and 1), ICT identities 0 / 1 dense
  # 0.213 / 0.237 -> 0.185 / 0.205 mm; 2D landmarks lose at 6e-3 (demo 0.29 -> 0.40 mm) and ICT
  # markers do not gain (0.743 / 0.756 -> 0.730 / 0.762), so they keep `learning_rate` (README).
  config.train.dense_learning_rate = 6e-3
  # With 3D markers alone (the coefficient-field terms on), these steps and peak learning rate
  # instead of `num_steps` and `learning_rate` when set (`configs/fit_fast.py`: 1,500 at 2e-2).
  config.train.marker_steps = 0
  config.train.marker_learning_rate = 0.0
  # With 2D landmarks alone, at most this many steps (0: `num_steps`). One camera leaves depth
  # to the priors, and a longer fit matches the image better and the depth worse: ICT
  # identities 0 / 1 at 2 px, 60 frames, 700 / 1,000 / 1,500 / 2,000 / 3,000 steps: 1.101 /
  # 1.149 / 1.221 / 1.292 / 1.395 mm and 1.370 / 1.312 / 1.299 / 1.349 / 1.457 (6,000: 1.731);
  # the synthetic actor at 1 px 0.450 / 0.456 / 0.483 / 0.514 / 0.589. Its whole 100-frame
  # sequence wants more (1,000 / 1,500 / 2,000 / 3,000: 0.348 / 0.328 / 0.316 / 0.304 mm), so
  # 2,000; ICT-like captures gain 3-11 % at 1,000 (README).
  config.train.landmark_steps = 2000
  config.train.warmup_steps = 50
  config.train.final_lr_fraction = 0.05
  # Gradients above this many times their running mean norm are scaled down to it (0: off;
  # `train_loop.clip_spikes`). Without it a dense fit at 6e-3 over 8,000 steps blew up at step
  # ~2,000 (0.07 -> 0.67 mm) and ended at 0.082 mm; with 3: 0.039 mm, and 0.055 after the
  # default 3,000 steps either way (README).
  config.train.spike_clip = 3.0
  config.train.points_per_step = 1024   # Constrained points sampled per step (0: all).
  config.train.chunk_frames = 100       # Frames fitted jointly; longer sequences are chunked.
  config.train.shard_frames = True      # Shard frames over devices when there are several.
  config.train.log_every = 100
  config.train.checkpoint_every = 500
  config.train.max_checkpoints = 2
  config.train.steps_per_call = 1  # Steps per host dispatch (lax.scan over blocks of steps).

  config.loss = ml_collections.ConfigDict()
  config.loss.dense = 1.0
  config.loss.markers = 1.0
  config.loss.landmarks = 1.0
  config.loss.coefficients = 1e-4
  # AIM's coefficient-magnitude weight when every target is a 2D landmark: one camera leaves
  # the depth to the priors. 1e-4 / 1e-3 / 1e-2 on ICT identity 0, 1,000 landmarks, 2 px: 1.612
  # / 1.557 / 1.575 mm (README).
  config.loss.landmark_coefficients = 1e-3
  config.loss.temporal = 1e-3
  # Regularity of AIM's coefficient field w(z, c) between sparse constraints (ours, not in the
  # paper; `fitting/coefficient_field.py`): the umbrella Laplacian of w over the template mesh,
  # and shrinkage of w toward the frame's mean (global) blend. Both act on `field_points`
  # random template vertices each step; both are zero for AIM-global. They act only when every
  # target kind is in `field_kinds` (with dense targets every vertex is constrained and they
  # only cost accuracy), or when every target is a 2D landmark (`landmark_field_scale`). Chosen
  # on ICT identity 0, 150 markers, 0.3 mm noise, 5 % dropouts (README).
  config.loss.coefficient_smooth = 1e4
  config.loss.coefficient_shrink = 0.3
  config.loss.field_kinds = 'markers'
  config.loss.field_points = 128
  # The marker count the two weights above are for: with M markers they are scaled by this
  # over M (`methods.field_weight_scale`; 0 keeps them as they are). ICT identities 0 and 41 at
  # 30 markers: AIM / GBS 0.97 -> 0.95x and 1.05 -> 0.99x (README).
  config.loss.field_reference_markers = 150
  # AIM fits to 2D landmarks alone take the two weights above times this, with F_W at model.w0
  # (`methods.config_for_targets`; 0: landmarks follow `field_kinds` like any target). One
  # camera says little of depth, and a little regularity of the field holds it. 1,000
  # landmarks, 2 px, 60 frames, ICT identities 0 / 1 / 41 (GBS 1.600 / 1.619 / 1.609 mm) at 0 /
  # 0.03 / 0.1 / 0.3 / 1: 1.601 / 1.292 / 1.301 / 1.466 / 1.727, 1.981 / 1.349 / 1.236 / 1.237 /
  # 1.397, 1.609 / 1.451 / 1.375 / 1.472 / 1.741; the synthetic actor's 100 frames at 1 px:
  # 0.300 (0) / 0.304 (0.03) / 0.330 mm (0.1), so 0.03; its 60-frame sweep loses more (0.366 ->
  # 0.514 mm at 1 px: the smoothness term; README). Held-out landmarks choose between 0 and
  # this with `cv.folds=3`, `cv.scales='0,1'` (7 fits; right in 8 of 9 conditions measured).
  config.loss.landmark_field_scale = 0.03
  # Ties F_T's jaw to the frame's blend of the learning shapes' jaws by its GBS coefficients
  # (ours, mm^2 of mandible motion; `fitting/jaw_prior.py`), when every target kind is in
  # `jaw_kinds`; 0 leaves the jaw free, as in the paper. Chosen on ICT identity 0 (150
  # markers, 0.3 mm, 5 %): the fitted jaw 3.5 deg off at 0, 1.8 / 1.0 / 0.6 / 0.5 deg at
  # 0.003 / 0.01 / 0.03 / 0.1, at a skin error 3 / 5 / 6 / 8 % above the free jaw's (README).
  config.loss.jaw_blend = 0.01
  config.loss.jaw_kinds = 'markers'
  config.loss.regularized_points = 256  # Points the magnitude and temporal terms average over.
  config.loss.robust = 'none'           # 'none' | 'huber' | 'cauchy'
  # px for landmarks, mm for 3D targets; 0: three times the stated noise (config.noise).
  config.loss.robust_scale = 2.0
  config.loss.optimize_camera = False   # Refine the camera extrinsics (landmarks).

  # The observation noise the user expects (per axis): sets the robust scale when
  # loss.robust_scale is 0 and is taken out of the held-out errors (`cross_validation`).
  config.noise = ml_collections.ConfigDict()
  config.noise.markers_mm = 0.0
  config.noise.landmarks_px = 0.0

  # k-fold held-out markers / landmarks (`fitting/cross_validation.py`): every fold hidden once,
  # fitted from the rest and measured at the hidden ones; report.json's 'held_out'. Costs `folds`
  # extra fits per method and scale. `scales`: multipliers of each method's regularisation
  # (methods.REGULARISATION) tried by held-out error, the best kept (e.g. '0.25,1,4').
  config.cv = ml_collections.ConfigDict()
  config.cv.folds = 0
  config.cv.seed = 0
  config.cv.scales = ''

  # Each chunk's batch fit finished frame by frame in closed form (`fitting/refinement.py`):
  # `regions` smooth template regions' coefficients per frame, pulled toward the frame's batch
  # solution at the pull of `pulls` (or not at all) with the least error at `held_out` of the
  # points, hidden in `choice_frames` frames. AIM (separable F_W) with dense targets; 0: off.
  # After the default 3,000 steps on the demo: 0.0546 -> 0.0343 mm noise-free, the batch kept
  # with 0.2 mm of noise; off by default until the README's dense numbers are rerun with it.
  # `configs/fit_fast.py` turns it on after a shorter batch fit (README, "Fitting speed").
  config.refine = ml_collections.ConfigDict()
  config.refine.regions = 0
  config.refine.pulls = '10,1,0.1,0.01,0.001'
  config.refine.held_out = 0.1
  config.refine.choice_frames = 8

  config.gbs = ml_collections.ConfigDict()
  config.gbs.ridge = 1e-4
  config.gbs.iterations = 10

  # Targets made from the synthetic actor's held-out performance (--targets=synthetic).
  config.synthetic = ml_collections.ConfigDict()
  config.synthetic.kind = 'dense'       # 'dense' | 'markers' | 'landmarks'
  config.synthetic.num_frames = 100
  config.synthetic.seed = 1
  config.synthetic.num_markers = 150
  config.synthetic.marker_noise_mm = 0.0
  config.synthetic.marker_dropout = 0.0  # Fraction of (frame, marker) observations missing.
  config.synthetic.num_landmarks = 1000
  config.synthetic.noise_px = 1.0

  config.output = ml_collections.ConfigDict()
  config.output.meshes = True
  config.output.mesh_format = 'ply'
  config.output.render = True
  config.output.render_frames = 4       # Error-map renders of this many frames per method.
  return config
