"""Screenshots of the viewer in headless Chromium (the browser test and docs/images/viewer.png).

Chromium (`scripts/install_browser.sh`) is started headless on the viewer's URL with a DevTools
port; once the caller says the scene is ready (the viser server has a connected client that has
drawn a frame) the page is captured over the DevTools protocol (`Page.captureScreenshot`). Only
localhost is contacted. WebGL runs on SwiftShader (software), so no GPU or display is needed.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

CHROMIUM = '/usr/bin/chromium'
FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--enable-unsafe-swiftshader', '--use-gl=angle', '--use-angle=swiftshader',
         '--hide-scrollbars', '--mute-audio', '--remote-debugging-address=127.0.0.1',
         '--remote-debugging-port=0')
# Drops viser's "software WebGL" notice (true here, and not what a picture should show).
# True once the page's WebGL canvas is fully shown: viser dims it while its environment map
# loads (slow on SwiftShader) and fades it in over the next frames.
CANVAS_SHOWN = ("(() => { const c = document.querySelector('canvas'); "
                "return !!c && (c.style.opacity === '' || Number(c.style.opacity) >= 1); })()")
HIDE_NOTICES = ("document.querySelectorAll('[class*=\"Notification-root\"]')"
                '.forEach(e => e.remove())')


class _QuietHandshakes(logging.Filter):
  """Drops the websockets server's 'opening handshake failed' tracebacks: Chromium opens
  speculative connections to the page's server and closes them unused."""

  def filter(self, record: logging.LogRecord) -> bool:
    return 'opening handshake failed' not in record.getMessage()


class BrowserError(RuntimeError):
  """Chromium could not be started or driven; the message says what happened."""


def chromium_command(url: str, user_data_dir: str, size: Tuple[int, int] = (1280, 800),
                     chromium: str = CHROMIUM) -> list:
  """The command line that opens `url` in headless Chromium with a DevTools port."""
  return [chromium, *FLAGS, f'--user-data-dir={user_data_dir}',
          f'--window-size={size[0]},{size[1]}', url]


def _devtools_port(process: subprocess.Popen, timeout: float) -> int:
  """The DevTools port Chromium prints on stderr ('DevTools listening on ws://host:port/...')."""
  found, lines = [], []

  def read():
    for line in process.stderr:
      lines.append(line)
      match = re.search(r'DevTools listening on ws://[^:]+:(\d+)/', line)
      if match:
        found.append(int(match.group(1)))
        return

  reader = threading.Thread(target=read, daemon=True)
  reader.start()
  reader.join(timeout)
  if not found:
    tail = ''.join(lines[-5:]).strip()
    raise BrowserError(f'chromium did not open a DevTools port within {timeout:g} s'
                       + (f': {tail}' if tail else ''))
  threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
  return found[0]


class DevTools:
  """A minimal Chrome DevTools protocol client of one page (synchronous)."""

  def __init__(self, port: int, timeout: float = 30.0):
    from websockets.sync.client import connect  # viser's dependency.
    deadline = time.monotonic() + timeout
    page = None
    while page is None:
      with urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=5) as response:
        pages = [t for t in json.load(response) if t.get('type') == 'page']
      page = pages[0] if pages else None
      if page is None:
        if time.monotonic() > deadline:
          raise BrowserError('chromium opened no page')
        time.sleep(0.2)
    self._socket = connect(page['webSocketDebuggerUrl'], max_size=None, open_timeout=timeout)
    self._ids = itertools.count(1)

  def call(self, method: str, params: Optional[dict] = None, timeout: float = 60.0) -> dict:
    """Sends one command and returns its result (events in between are skipped)."""
    message_id = next(self._ids)
    self._socket.send(json.dumps({'id': message_id, 'method': method, 'params': params or {}}))
    deadline = time.monotonic() + timeout
    while True:
      reply = json.loads(self._socket.recv(timeout=max(0.1, deadline - time.monotonic())))
      if reply.get('id') == message_id:
        if 'error' in reply:
          raise BrowserError(f'{method}: {reply["error"]}')
        return reply.get('result', {})

  def evaluate(self, expression: str):
    """The value of a JavaScript expression in the page."""
    result = self.call('Runtime.evaluate', {'expression': expression, 'returnByValue': True})
    return result.get('result', {}).get('value')

  def close(self):
    self._socket.close()


def screenshot(url: str, path: str, is_ready: Callable[[], bool],
               size: Tuple[int, int] = (1280, 800), timeout: float = 90.0, settle: float = 2.0,
               chromium: str = CHROMIUM, hide_notices: bool = True,
               before: Sequence[Callable[[], None]] = ()) -> str:
  """Opens `url` in headless Chromium, waits for `is_ready()` and for the page's canvas to be
  fully shown (`CANVAS_SHOWN`), and writes a PNG of the page.

  Args:
    url: the viewer's address (localhost).
    path: the PNG to write.
    is_ready: polled until True (e.g. the server has a client that rendered a frame).
    size: window width, height in px.
    timeout: seconds to wait for Chromium and for `is_ready`.
    settle: seconds to wait after `is_ready` (and after each of `before`), for the GUI's
      transitions.
    hide_notices: drop viser's pop-up notices from the picture.
    before: callables run once ready, before the capture (e.g. move a slider).
  Returns:
    `path`.
  Raises:
    BrowserError: Chromium missing, not starting, or the page never ready.
  """
  if not os.path.exists(chromium):
    raise BrowserError(f'{chromium}: not found; run scripts/install_browser.sh')
  quiet = _QuietHandshakes()
  logging.getLogger('websockets.server').addFilter(quiet)
  profile = tempfile.mkdtemp(prefix='aim_viewer_chromium_')
  process = subprocess.Popen(chromium_command(url, profile, size, chromium),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  devtools = None
  try:
    port = _devtools_port(process, timeout)
    devtools = DevTools(port, timeout)
    devtools.call('Emulation.setDeviceMetricsOverride',
                  {'width': size[0], 'height': size[1], 'deviceScaleFactor': 1, 'mobile': False})
    deadline = time.monotonic() + timeout
    while not (is_ready() and devtools.evaluate(CANVAS_SHOWN)):
      if time.monotonic() > deadline or process.poll() is not None:
        raise BrowserError(f'{url}: the viewer was not ready within {timeout:g} s')
      time.sleep(0.2)
    time.sleep(settle)
    for step in before:
      step()
      time.sleep(settle)
    if hide_notices:
      devtools.evaluate(HIDE_NOTICES)
      time.sleep(0.5)
    shot = devtools.call('Page.captureScreenshot', {'format': 'png'}, timeout=timeout)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
      f.write(base64.b64decode(shot['data']))
    return path
  finally:
    if devtools is not None:
      devtools.close()
    process.terminate()
    try:
      process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
    shutil.rmtree(profile, ignore_errors=True)
    logging.getLogger('websockets.server').removeFilter(quiet)


def image_stats(image: np.ndarray) -> dict:
  """How much a picture shows: 'std' (grey-level standard deviation), 'colors' (distinct RGB
  colours) and 'background' (fraction of pixels of the most common colour).

  Args:
    image: (H, W, 3 or 4) uint8.
  """
  rgb = np.asarray(image)[..., :3].reshape(-1, 3).astype(np.int64)
  codes = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
  _, counts = np.unique(codes, return_counts=True)
  return {'std': float(rgb.mean(axis=-1).std()), 'colors': int(len(counts)),
          'background': float(counts.max() / len(codes))}
