"""Editing a learned AIM's anatomy (experiments/edit_anatomy.py).

The default is the README's example on the synthetic demo model: cheeks 40 % thicker, in a
sphere of 18 mm (plus 15 mm of smooth falloff) around vertex 1667 (the left cheek of the
resolution-64 synthetic actor) and its mirror image.
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.region = ml_collections.ConfigDict()
  config.region.kind = 'sphere'        # 'sphere' | 'vertices' | 'mask'
  config.region.center_mm = ''         # Sphere centre 'x,y,z' (mm) ...
  config.region.center_vertex = 1667   # ... or at a template vertex (-1: use center_mm).
  config.region.radius_mm = 18.0       # Sphere: full effect within this distance.
  config.region.vertices = ''          # 'vertices': comma-separated vertex ids.
  config.region.mask = ''              # 'mask': .npy / text file, (V,) 0/1 mask or vertex ids.
  config.region.falloff_mm = 15.0      # Smooth (C2) transition to no effect beyond the region.
  config.region.symmetric = True       # Mirror the region across the sagittal plane.
  config.thickness_scale = 1.4         # Tissue thickness multiplier in the region.
  config.thickness_offset_mm = 0.0     # mm added to the thickness in the region.
  config.bone_offset_mm = '0,0,0'      # Bone displacement 'x,y,z' mm in the region.
  config.output = ml_collections.ConfigDict()
  config.output.meshes = True
  config.output.render = True
  config.output.view = 'three_quarter'
  # Shapes rendered before / after besides the neutral (missing names are skipped).
  config.output.render_shapes = 'jaw_open_wide,smile,cheek_puff'
  return config
