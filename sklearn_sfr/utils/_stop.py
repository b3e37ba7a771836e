"""A stop asked of a command (Ctrl-C, SIGTERM, SIGHUP), kept where its exception may be lost.

The command line's signal handler raises :class:`Stopped` wherever the main thread happens to
be. Python drops an exception raised in some places (a ``__del__`` method, a weakref callback:
"Exception ignored in ...") and a library may catch it, so the command would run on and publish
its outputs as if it had not been asked to stop. The handler therefore also records the request
here, and the writers check it just before they publish an output
(:func:`raise_if_stopped`). While an output is being moved into place (:func:`stop_deferred`) a
stop is only recorded, and raised once the move is complete: no signal can leave an output
half moved (the old one set aside, the new one not yet in its place).

Library users who never go through the command line never record a request, so none of this
changes what a function does for them.
"""

from __future__ import annotations

import contextlib


class Stopped(BaseException):
    """SIGINT, SIGTERM or SIGHUP (Ctrl-C, a closed terminal, ``kill``, a batch system's time
    limit): unwinds the command so every temporary output is removed.

    Not a ``KeyboardInterrupt``: skorch catches that to end a training early and goes on, so
    Ctrl-C during ``tune`` or ``study`` would only stop one network's fit.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


_state = {"signum": None, "deferring": 0}


def request_stop(signum):
    """Record a stop; whether it may be raised now (False inside :func:`stop_deferred`)."""
    _state["signum"] = signum
    return _state["deferring"] == 0


def clear_stop():
    """Forget any recorded stop (a command starts and ends with none)."""
    _state["signum"] = None


def raise_if_stopped():
    """Raise :class:`Stopped` if a stop was recorded: called before an output is published."""
    if _state["signum"] is not None:
        raise Stopped(_state["signum"])


@contextlib.contextmanager
def stop_deferred():
    """A section a signal must not cut in two: a stop during it is raised at its end."""
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
    raise_if_stopped()
