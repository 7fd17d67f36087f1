"""An interactive browser viewer of a learned model and its performances (viser).

`scene.py` decides what is shown (pure functions, no server), `data.py` reads model and
performance directories, `app.py` is the thin viser layer and `browser.py` takes screenshots
with headless Chromium. viser is optional (`pip install -e '.[viewer]'`) and imported only when
a server starts.
"""

VISER_MISSING = "viser is not installed: pip install -e '.[viewer]'"


class ViserMissing(ImportError):
  """viser is not installed; the message is the one line that says how to install it."""


def require_viser():
  """The viser module, or `ViserMissing` with the one-line install message."""
  try:
    import viser
  except ImportError:
    raise ViserMissing(VISER_MISSING) from None
  return viser
