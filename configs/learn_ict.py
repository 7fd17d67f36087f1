"""Learning an ICT-FaceKit actor (experiments/prepare_actor.py --source=ict) on a CPU.

`learn_demo.py` plus the jaw prior (not in the paper): the learned per-shape jaw transforms are
pulled toward the jaws `prepare_actor.py` fitted to each learning shape's lower teeth (actor.json's
`jaw_transforms`), measured as the mean squared displacement (mm^2) of 256 mandible points. On
actors without per-shape jaws the term does nothing. At 0.1 the learned jaws follow the teeth
(ICT identity 0: jawOpen 24.7 deg for 24.8, 0.03 deg mean over the 19 shapes); without it
jawOpen opened 14.7 deg and the expression deltas carried the rest; at 1e-3, 15.6 deg.
"""

from configs import learn_demo


def get_config():
  config = learn_demo.get_config()
  config.loss.weights.jaw_prior = 0.1
  return config
