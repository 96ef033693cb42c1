"""Load a page in a real headless Chromium and report what a reader would see go wrong.

Talks the Chrome DevTools protocol over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4: replies
and events out, each message JSON ended by a NUL byte), so only the standard library is needed.
:func:`inspect_page` opens the URL in a fresh profile, waits for the load event (which waits for
every image), and returns the console errors, uncaught exceptions, failed loads and, per image,
whether it was displayed (``naturalWidth`` > 0).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")

IMAGES_JS = """JSON.stringify({
  title: document.title,
  images: Array.from(document.images).map(img => ({
    src: img.getAttribute('src'), complete: img.complete, naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight, shownWidth: img.getBoundingClientRect().width})),
  text: document.body ? document.body.innerText.slice(0, 200000) : ''
})"""


#: how the page is laid out at the viewport's width: horizontal overflow of the document and of each table's
#: box, and every date, interval or probability that a line break cut in two
LAYOUT_JS = r"""JSON.stringify((() => {
  const tokens = /\d{4}-\d{2}-\d{2}|\[[-+\u2212]?\d+\.\d+, [-+\u2212]?\d+\.\d+\]|[-+\u2212]?\d+\.\d+\u2013[-+\u2212]?\d+\.\d+|P = [<>]?\d+\.\d+/g;
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(tokens)) {
      const range = document.createRange();
      range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
      const tops = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
  return {
    innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
    tables: Array.from(document.querySelectorAll('div.table')).map(d => ({id: d.id,
      overflow: Math.max(0, ...[d, ...d.querySelectorAll('div')].map(e => e.scrollWidth - e.clientWidth))})),
    broken: broken};
})())"""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Pipe:
    def __init__(self, proc, write_fd: int, read_fd: int):
        self.proc, self.write_fd, self.read_fd = proc, write_fd, read_fd
        self.buffer = b""
        self.events: list[dict] = []
        self.next_id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        return self.next_id

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe (exit code {self.proc.poll()}); see its log")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, session: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        while True:
            message = self._read(deadline)
            self.events.append(message)
            if message.get("method") == method and message.get("sessionId") == session:
                return message


def inspect_page(url: str, *, chromium: str | None = None, timeout: float = 90, width: int = 1280) -> dict:
    """Open ``url`` in headless Chromium at a viewport ``width`` pixels wide; return ``{"title", "images",
    "errors", "text", "layout"}``, where ``errors`` lists console errors, uncaught exceptions and failed
    loads, ``images`` has ``src``, ``complete``, ``naturalWidth``, ``naturalHeight`` and ``shownWidth`` of
    every image, and ``layout`` (:data:`LAYOUT_JS`) the document's and each table box's widths and the
    dates, intervals and probabilities a line break cut."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH")
    profile = tempfile.mkdtemp(prefix="bayescpec-chromium-")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def plumbing():  # in the child: the command pipe on fd 3, the reply pipe on fd 4
        high_in = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        high_out = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.dup2(high_in, 3)
        os.dup2(high_out, 4)

    log = open(os.path.join(profile, "chromium.log"), "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                             "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log, preexec_fn=plumbing, pass_fds=(3, 4))
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(proc, to_chrome_w, from_chrome_r)
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            pipe.call(domain, session=session)
        pipe.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        pipe.call("Page.navigate", {"url": url}, session=session)
        pipe.wait_for("Page.loadEventFired", session, timeout=timeout)
        evaluated = pipe.call("Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True},
                              session=session)
        page = json.loads(evaluated["result"]["value"])
        laid_out = pipe.call("Runtime.evaluate", {"expression": LAYOUT_JS, "returnByValue": True}, session=session)
        page["layout"] = json.loads(laid_out["result"]["value"])
        errors = []
        for event in pipe.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                     for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append("exception: " + str(details.get("exception", {}).get("description")
                                                  or details.get("text")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        page["errors"] = errors
        try:
            pipe.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError):
            pass
        return page
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
