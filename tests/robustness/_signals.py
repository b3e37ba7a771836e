"""Children that a test stops with a signal, whatever dispositions the test process inherited."""

import signal


def default_signals():
    """``preexec_fn`` for such a child: SIGINT, SIGTERM and SIGHUP at their defaults.

    The suite may run under ``nohup`` (SIGHUP ignored) or as a script's background job (SIGINT
    ignored). A child inherits that, and the command line rightly keeps a signal that was
    ignored when it started ignored, so the run would finish where the test means to stop it.
    """
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
