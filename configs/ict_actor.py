"""Preparing an ICT-FaceKit actor (experiments/prepare_actor.py --source=ict).

The learning shapes are the identity's neutral plus `expressions` at weight 1 (20 shapes, as in
the paper): the four jaw shapes, which move the lower teeth and so give jaw ground truth, and a
spread of mouth, brow, eye, cheek and nose shapes, mostly one-sided (the other side and every
other ICT expression stay held out for the performance).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.name = ''  # Default: 'ict<seed>' or 'ict_custom'.

  config.ict = ml_collections.ConfigDict()
  config.ict.path = ''  # ict_facekit_light.npz or the FaceXModel folder; or --ict_path.
  config.ict.identity_seed = 0  # Coefficients ~ N(0, 1) from this seed ...
  config.ict.identity_coefficients = ''  # ... unless given: comma-separated, up to 100 numbers.
  config.ict.num_identity_modes = 100  # Modes drawn from the seed (the rest stay 0).
  # Skin region: 'narrow_face' (0..6705: forehead to chin, ear to ear, no ears, scalp or neck)
  # gives one sheet whose every point lies over bone, so ray casting needs no masking of ears or
  # neck; 'face' (0..9408) adds the ears, scalp and neck.
  config.ict.region = 'narrow_face'
  config.ict.error_region = 'narrow_face'  # Actor.region: where errors are measured.
  config.ict.expressions = (
      'jawOpen', 'jawLeft', 'jawRight', 'jawForward',
      'mouthSmile_L', 'mouthSmile_R', 'mouthPucker', 'mouthFunnel', 'mouthStretch_L',
      'mouthFrown_L', 'mouthPress_L', 'mouthUpperUp_L',
      'browInnerUp_L', 'browOuterUp_R', 'browDown_L',
      'eyeBlink_L', 'eyeWide_R',
      'cheekPuff_L', 'cheekSquint_R',
  )
  # Trusted mask (A.1): all but the lips, the lower nose and the eyelids (balls around Multi-PIE
  # landmarks: outer lips 48-59, nose 30-35, eyes 36-47).
  config.ict.untrusted_lip_radius_mm = 8.0
  config.ict.untrusted_nose_radius_mm = 10.0
  config.ict.untrusted_eye_radius_mm = 8.0
  config.ict.performance_frames = 120  # Held-out performance written with the actor (0: none).
  config.ict.performance_seed = 1
  # Sparse activations at speech-like intensities (each expression active about 10 % of the
  # time, up to weight 0.5) and a separate jaw track up to jawOpen 0.75 (~19 deg, ~10 deg on
  # average); `ict.performance_weights`. Activity 0.3, weight 1 and jaw weight 0 give the
  # earlier dense mixes (jawOpen one more curve).
  config.ict.performance_activity = 0.1
  config.ict.performance_max_weight = 0.5
  config.ict.performance_jaw_max_weight = 0.75

  config.skull = ml_collections.ConfigDict()
  config.skull.path = ''  # The ArtiSynth vkhUpperAirway folder (or its parent); or --skull_path.
  config.skull.min_component_vertices = 100  # Debris of the Skull mesh below this is dropped.

  # bone_fit.WarpSettings fields (see there).
  config.bone_fit = ml_collections.ConfigDict()
  config.bone_fit.margin_mm = 2.0  # Bone at least this far under every skin point but the lips'
  config.bone_fit.slack_mm = 0.5  # contact line (guaranteed by the final push).
  config.bone_fit.sigma_mm = 20.0  # The cranium's RBF warp ...
  config.bone_fit.num_centers = 300
  config.bone_fit.stiff_sigma_mm = 40.0  # ... and the mandible's, wider: it must not bend.
  config.bone_fit.stiff_num_centers = 60
  config.bone_fit.ridge = 1e-4
  config.bone_fit.iterations = 10
  config.bone_fit.depth_weight = 1.0
  config.bone_fit.margin_weight = 1.0
  config.bone_fit.anchor_weight = 10.0
  config.bone_fit.max_step_mm = 5.0
  config.bone_fit.max_depth_correction_mm = 15.0
  config.bone_fit.max_distance_mm = 60.0
  config.bone_fit.max_outside_mm = 15.0
  config.bone_fit.violation_score_weight = 100.0
  config.bone_fit.push_rounds = 30
  config.bone_fit.push_plateau_mm = 3.0
  config.bone_fit.push_falloff_mm = 8.0
  config.bone_fit.seed = 0

  # Sparse constraints written with the actor (constraints.npz), as configs/learn.py computes them.
  config.constraints = ml_collections.ConfigDict()
  config.constraints.max_depth_mm = 40.0
  config.constraints.min_facing = 0.0
  config.constraints.source_fraction = 0.1
  config.constraints.seed = 0

  # --source=synthetic.
  config.synthetic = ml_collections.ConfigDict()
  config.synthetic.resolution = 64
  config.synthetic.seed = 0

  config.render = True
  return config
