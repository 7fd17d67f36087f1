"""Paper-sized model learning (supplementary Fig. 11; DESIGN.md sections 4-5).

Hidden 256, 1e4 Adam steps at 2e-3, all of L_Model. Sized for a GPU (the paper: ~10 min on one
RTX 3090 for ~40k vertices); runs on a CPU too, slowly. Every field can be overridden on the
command line, e.g. `--config.train.num_steps=2000 --config.loss.use.anatomy=False`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  # The synthetic actor (used when --actor=synthetic).
  config.actor = ml_collections.ConfigDict()
  config.actor.resolution = 128  # ~15k skin vertices; 200 gives ~40k.
  config.actor.seed = 0

  # Sparse anatomical constraints (supplementary A.1).
  config.constraints = ml_collections.ConfigDict()
  config.constraints.max_depth_mm = 40.0
  config.constraints.min_facing = 0.0
  # Fraction of trusted vertices casting rays: ~0.1 gives the paper's 5-10 % constrained points.
  config.constraints.source_fraction = 0.1
  # Fewer constrained vertices than this fraction stops learning (the bones are probably
  # misplaced: wrong units, axes or position); fewer than warn_fraction is reported.
  config.constraints.min_fraction = 0.005
  config.constraints.warn_fraction = 0.02

  config.model = ml_collections.ConfigDict()
  config.model.hidden = 256
  config.model.depth = 3
  config.model.activation = 'sine'  # 'sine' | 'relu' | 'gelu' (Table 2).
  config.model.w0 = 30.0
  config.model.sine = 'poly'  # 'poly' (fast range-reduced polynomial) | 'xla' (jnp.sin).
  config.model.expression_hidden = 0  # 0: same as hidden.
  config.model.bone_scale = 10.0  # mm per unit of raw bone offset.
  config.model.thickness_scale = 10.0  # mm per unit of softplus output.
  config.model.delta_scale = 10.0  # mm per unit of raw expression delta.
  config.model.layout = 'loop'  # 'loop' | 'stacked' (benchmarks/learn_step.py compares them).
  # Not in the paper: the anatomy networks' (B, N, D, K) own activation and sine frequency
  # ('' / 0: the shared ones above), for a smoother anatomy between the constraints.
  config.model.anatomy_activation = ''
  config.model.anatomy_w0 = 0.0

  config.loss = ml_collections.ConfigDict()
  config.loss.weights = ml_collections.ConfigDict()
  config.loss.weights.reconstruction = 1.0
  # Not in the paper (issue 11): the neutral's reconstruction (mm^2) once more. L_R averages the
  # S shapes, so the neutral, the one shape rebuilt from the anatomy alone (s0 = B + D N), weighs
  # 1/S of it against the anatomy's regularisers; every other shape is built on it. At 5 the
  # demo's neutral is 0.02 mm off instead of 0.109 (README, 'The anatomy between the
  # constraints').
  config.loss.weights.neutral = 5.0
  config.loss.weights.anatomy = 1.0  # Bone points (mm^2).
  config.loss.weights.anatomy_normal = 1.0  # Bone normals (1 - cos).
  config.loss.weights.thickness = 1.0  # Thickness at constraints (mm^2).
  config.loss.weights.thickness_small = 7.5e-4  # Small-thickness prior where unconstrained.
  config.loss.weights.skinning = 1e2  # k = 0 on cranium hits, 1 on mandible hits.
  # 0.1 since the regularisers act on every vertex (issue 11): at 1.0 the demo's held-out dense
  # fit was 0.070 mm (0.064 before issue 11), at 0.1 0.065, with the skinning weight closer to
  # the truth (0.007 against 0.012 mean error).
  config.loss.weights.skinning_smooth = 0.1
  # Not in the paper: thickness varies slowly (same jittered neighbours as skinning_smooth).
  # 0.1 since the regularisers act on every vertex (issue 11); at 1.0 the demo's thickness was
  # smoother than the truth's and the skin paid for it (README, 'The anatomy between the
  # constraints').
  config.loss.weights.thickness_smooth = 0.1
  config.loss.weights.symmetry = 1e-4
  # Not in the paper (issue 11): the bone map alone held to its mirror image (mm^2,
  # losses.bone_symmetry). L_Sym above also binds D and N, and the neutral s0 = B + D N with
  # them, so raising it costs the skin its own asymmetry; this binds only the bone.
  config.loss.weights.bone_symmetry = 0.0
  # Not in the paper (issue 11): the bone map c -> B(c) bends slowly (second difference, mm^2),
  # the anatomy normals turn slowly (1 - cos; same jittered neighbours as skinning_smooth), and
  # the anatomy surface does not fold (hinge on flipped bone triangles, losses.fold).
  config.loss.weights.bone_smooth = 1.0
  config.loss.weights.normal_smooth = 1.0
  config.loss.weights.fold = 1.0
  # Not in the paper (issue 11), off here: pulls the thickness (mm^2) toward the closest-point
  # depth of the actor's bone meshes where the bone fit is trusted (learning.depth_prior_targets),
  # weighted below the sparse constraints (L_D's 'thickness' is 1.0). On the synthetic actor the
  # bone meshes are the truth, so it stays off there; configs/learn_ict.py measures it.
  config.loss.weights.depth_prior = 0.0
  # Not in the paper: a small prior on the expression deltas so that jaw motion is learned by the
  # jaw transforms instead of being copied into E (see losses.expression_small).
  config.loss.weights.expression_small = 1e-2
  # Not in the paper (configs/learn_ict.py): pulls the learned jaws toward the actor's per-shape
  # jaws; acts only on actors that carry them (actor.json jaw_transforms).
  config.loss.weights.jaw_prior = 0.0
  # Table 3 switches: L_A (anatomy + normals), L_D (thickness + small prior), L_K, L_Sym.
  config.loss.use = ml_collections.ConfigDict()
  config.loss.use.anatomy = True
  config.loss.use.thickness = True
  config.loss.use.skinning = True
  config.loss.use.symmetry = True
  config.loss.use.expression_small = True
  config.loss.use.anatomy_smooth = True  # bone_smooth + normal_smooth (ours).
  config.loss.use.fold = True  # The fold penalty (ours).
  config.loss.use.bone_symmetry = True  # The bone's own mirror term (ours).
  config.loss.use.neutral = True  # The neutral's reconstruction once more (ours).
  config.loss.skinning_jitter_mm = 2.0
  # Bone-to-skin triangle area ratio below which the fold penalty acts (0: flipped only; the
  # synthetic truth's smallest is 0.10).
  config.loss.fold_margin = 0.02

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 10_000
  config.train.learning_rate = 1e-3  # The paper: 2e-3; it spiked and killed networks here.
  config.train.jaw_rotation_lr = 2e-3
  config.train.jaw_translation_lr = 2e-2  # mm.
  config.train.warmup_steps = 100
  config.train.adam_b2 = 0.99  # Adam's second-moment decay (optax default 0.999).
  config.train.grad_clip_norm = 1.0  # Global-norm clipping before Adam; 0 disables.
  config.train.final_lr_fraction = 0.02
  config.train.batch_size = 16384  # Query points per step; 0 = every vertex.
  config.train.constraint_batch = 4096  # 0 = every constraint.
  # Points of the batch, drawn at random every step, for L_Sym and the smoothness terms (and the
  # fold penalty's triangles when the batch is not every vertex); 0 = the whole batch.
  config.train.symmetry_batch = 2048
  config.train.log_every = 100
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  config.train.max_checkpoints = 3
  # Steps per host dispatch: a jitted lax.scan over blocks of steps between log and checkpoint
  # points (1: one step per call). 50: 1.4x faster learning steps on the 2-core CPU
  # (benchmarks/run_machinery.py); the fitting step gains nothing, so configs/fit.py keeps 1.
  config.train.steps_per_call = 50

  config.output = ml_collections.ConfigDict()
  config.output.mesh_format = 'ply'  # 'ply' | 'obj'.
  config.output.render = True
  config.output.shapes_to_render = 4  # Reconstructed shapes rendered next to their targets.
  return config
