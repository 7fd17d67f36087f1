"""A tiny retargeting run for the tests: seconds on a CPU, numbers not meaningful."""

from configs import fit_test, retarget


def get_config():
  config = retarget.get_config()
  config.fit = fit_test.get_config()
  config.fit.methods = 'aim'
  config.fit.output.render = False
  config.output.strip_frames = 2
  config.output.video_frames = 2
  return config
