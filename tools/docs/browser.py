"""Drive headless Chromium over the DevTools protocol, for the docs' browser test.

The protocol runs over a pipe (``--remote-debugging-pipe``: commands on file
descriptor 3, replies on 4, each JSON message ended by a NUL byte), so no
websocket library is needed. The DOM is read with ``pierce: true``, which
includes *closed* shadow roots: Material renders each Mermaid diagram into
one, where page JavaScript (and ``--dump-dom``) cannot see it.

Every host but 127.0.0.1 is unresolvable for the browser, so a page that still
loaded anything from a CDN would fail to render, and every request the page
makes is recorded so the test can show that none left the machine.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # the site must work offline: nothing else resolves
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """Chromium did not start, answered with an error, or a page did not get ready in time."""


@dataclass
class Chromium:
    profile: Path  # an empty folder for the user profile
    timeout: float = 60.0
    process: subprocess.Popen | None = None
    events: list[dict] = field(default_factory=list)
    _next_id: int = 0
    _buffer: bytes = b""

    def __enter__(self) -> Chromium:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        # The protocol wants the pipes as descriptors 3 and 4 exactly. bash moves them there and execs Chromium,
        # so Python needs no preexec_fn: that would force a fork(), which JAX (imported by other tests of the same
        # session) warns may deadlock; without it the child is spawned without running fork handlers.
        self.process = subprocess.Popen(
            [
                "/bin/bash",  # dash reads only one-digit descriptors in a redirection
                "-c",
                f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}',
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(to_browser_r, from_browser_w),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close")
        except BrowserError:
            pass
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stderr is not None:
                self.process.stderr.close()

    # ------------------------------------------------------------------ protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("no answer from Chromium before the deadline")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                stderr = self.process.stderr.read().decode(errors="replace")[-2000:] if self.process else ""
                raise BrowserError(f"Chromium closed the protocol pipe; its stderr ends with:\n{stderr}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        except OSError as error:
            raise BrowserError(f"cannot send {method} to Chromium: {error}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    # ------------------------------------------------------------------ pages
    def open(self, url: str, width: int = 1280, height: int = 900, mobile: bool = False) -> Page:
        """A new tab showing ``url`` in a ``width`` px wide window (``mobile``: a phone's viewport rules apply)."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session, target)
        for domain in ("Page", "Network", "Runtime", "DOM"):
            self.send(f"{domain}.enable", session)
        self.send("Emulation.setDeviceMetricsOverride", session, width=width, height=height, deviceScaleFactor=1, mobile=mobile)
        self.send("Page.navigate", session, url=url)
        return page


@dataclass
class Page:
    browser: Chromium
    session: str
    target: str = ""

    def close(self) -> None:
        if self.target:
            self.browser.send("Target.closeTarget", targetId=self.target)

    def navigate(self, url: str) -> None:
        self.browser.send("Page.navigate", self.session, url=url)

    def rect(self, node_id: int) -> dict | None:
        """The bounding client rectangle (x, y, width, height) of a DOM node, even inside a closed shadow root."""
        try:
            handle = self.browser.send("DOM.resolveNode", self.session, nodeId=node_id)["object"]["objectId"]
        except BrowserError:
            return None
        result = self.browser.send(
            "Runtime.callFunctionOn",
            self.session,
            objectId=handle,
            functionDeclaration="function () { const r = this.getBoundingClientRect(); "
            "return {x: r.x, y: r.y, width: r.width, height: r.height, text: (this.textContent || '').trim()}; }",
            returnByValue=True,
        )
        return result.get("result", {}).get("value")

    def evaluate(self, expression: str):
        result = self.browser.send("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> bool:
        """Poll a JavaScript expression until it is true; False if it never was."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return True
            time.sleep(0.2)
        return False

    def dom(self) -> dict:
        """The whole DOM tree, closed shadow roots included."""
        return self.browser.send("DOM.getDocument", self.session, depth=-1, pierce=True)["root"]

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        ]

    def failed_requests(self) -> list[str]:
        urls = {
            e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        }
        return [
            f"{urls.get(e['params']['requestId'], '?')}: {e['params'].get('errorText')}"
            for e in self.browser.events
            if e.get("method") == "Network.loadingFailed" and e.get("sessionId") == self.session
        ]

    def screenshot(self, path: Path) -> None:
        data = self.browser.send("Page.captureScreenshot", self.session, format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


def walk(node: dict, in_shadow: bool = False):
    """Every node of a DOM tree as (node, whether it lies inside a shadow root)."""
    yield node, in_shadow
    for child in node.get("children", []):
        yield from walk(child, in_shadow)
    for root in node.get("shadowRoots", []):
        yield from walk(root, True)
    if "contentDocument" in node:
        yield from walk(node["contentDocument"], in_shadow)
