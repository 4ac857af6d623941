"""Sends the codes that ResendOtp and ForgotPassword asked for, off the request path.

Those calls only record the request (user_svc.email_codes), so their answer takes the
same time whether or not the address is registered; the account lookup, the new code
and its event happen here, in a background thread. It is woken by each recorded
request, but starts `delay_seconds` later: working at once, it would compete for the
interpreter with the very answer of that request, which would then be slower for a
registered address. It also polls (`poll_seconds`), so requests recorded by another
replica, or left by a process that stopped, are sent too. A failure (the database
away) is logged and retried on the next round; the requests stay recorded meanwhile.
"""

from __future__ import annotations

import logging
import threading

from user_svc.email_codes import EmailCodes

log = logging.getLogger(__name__)


class CodeDispatcher:
    def __init__(self, codes: EmailCodes, *, poll_seconds: float = 1.0, delay_seconds: float = 0.1) -> None:
        self._codes = codes
        self._poll = poll_seconds
        self._delay = delay_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="code-dispatch", daemon=True)

    def start(self) -> CodeDispatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._codes.requested.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._codes.requested.wait(self._poll):
                self._stopping.wait(self._delay)  # let the request's answer leave first
            self._codes.requested.clear()
            try:
                while self._codes.dispatch_pending() and not self._stopping.is_set():
                    pass
            except Exception:
                log.exception("sending requested codes failed; retrying shortly")
                self._stopping.wait(self._poll)
