"""Learning an ICT-FaceKit actor (experiments/prepare_actor.py --source=ict) on a CPU.

`learn_demo.py` plus the jaw prior (not in the paper): the learned per-shape jaw transforms are
pulled toward the jaws `prepare_actor.py` fitted to each learning shape's lower teeth (actor.json's
`jaw_transforms`), measured as the mean squared displacement (mm^2) of 256 mandible points. On
actors without per-shape jaws the term does nothing. Without it the ICT jawOpen was learned
opening 14.7 deg for a true 24.8 deg, with the expression deltas carrying the rest.
"""

from configs import learn_demo


def get_config():
  config = learn_demo.get_config()
  config.loss.weights.jaw_prior = 1e-3
  return config
