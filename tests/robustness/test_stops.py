"""Attack catalogue, stops: a command asked to stop never publishes, whatever swallows the signal.

The signal handler raises where the main thread is; where that exception is dropped (a weakref
callback, a library that catches it) the recorded request still keeps the outputs from being
published, and a stop while an output is moved into place waits until the move is complete.
"""

import os
import signal
import sys

import pytest

from sklearn_sfr import cli
from sklearn_sfr.datasets import HiSSCubeWriter
from sklearn_sfr.utils import _stop
from sklearn_sfr.utils._io import remove_stale_temporaries, temporary_path
from sklearn_sfr.utils._outputs import OutputFolder

from ._signals import default_signals
from .test_output_safety import tree_state


@pytest.fixture(autouse=True)
def no_stop_left():
    _stop.clear_stop()
    yield
    _stop.clear_stop()


def test_a_stop_whose_exception_is_lost_still_publishes_no_cube(tmp_path, monkeypatch, capsys):
    cube = tmp_path / "cube.h5"
    assert cli.main(["make-cube", str(cube), "--n-objects", "5", "--quiet"]) == 0
    before = tree_state(tmp_path)
    close = HiSSCubeWriter.close

    def swallowed_stop(self):
        # What a library that catches the exception leaves: the request, and no exception.
        _stop.request_stop(signal.SIGINT)
        return close(self)

    monkeypatch.setattr(HiSSCubeWriter, "close", swallowed_stop)
    args = ["make-cube", str(cube), "--n-objects", "7", "--quiet", "--overwrite"]
    assert cli.main(args) == 128 + signal.SIGINT
    assert "interrupted: nothing was left half-written" in capsys.readouterr().err
    assert tree_state(tmp_path) == before  # the earlier cube, and no temporary


def test_a_stop_whose_exception_is_lost_keeps_the_earlier_folder(tmp_path):
    out = tmp_path / "report"
    with OutputFolder(out, kind="example") as tmp:
        (tmp / "a.txt").write_text("first run")
    before = tree_state(tmp_path)
    with pytest.raises(_stop.Stopped), OutputFolder(out, kind="example", overwrite=True) as tmp:
        (tmp / "a.txt").write_text("second run")
        _stop.request_stop(signal.SIGTERM)
    assert tree_state(tmp_path) == before


def test_a_stop_during_the_swap_waits_for_its_end(tmp_path, monkeypatch):
    out = tmp_path / "report"
    with OutputFolder(out, kind="example") as tmp:
        (tmp / "a.txt").write_text("first run")
    replace = os.replace
    raised_at_once = []

    def signalled_replace(src, dst):
        if os.fspath(src) == os.fspath(out):  # the earlier output set aside: mid-swap
            raised_at_once.append(_stop.request_stop(signal.SIGINT))
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", signalled_replace)
    with pytest.raises(_stop.Stopped), OutputFolder(out, kind="example", overwrite=True) as tmp:
        (tmp / "a.txt").write_text("second run")
    # Recorded, not raised, until both renames and the removal of the aside were done.
    assert raised_at_once == [False]
    assert (out / "a.txt").read_text() == "second run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_killed_swap_gets_the_previous_output_back(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "a.txt").write_text("the last result")
    aside = tmp_path / temporary_path(out, suffix="old").name.replace(
        f".{os.getpid()}.", ".999999999."
    )
    os.rename(out, aside)  # killed here: set aside, nothing in its place
    stale_tmp = tmp_path / aside.name.replace(".old", ".tmp")
    stale_tmp.mkdir()
    assert remove_stale_temporaries(out) == [stale_tmp]
    assert (out / "a.txt").read_text() == "the last result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_an_aside_is_removed_when_the_output_is_in_place(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    aside = tmp_path / temporary_path(out, suffix="old").name.replace(
        f".{os.getpid()}.", ".999999999."
    )
    aside.mkdir()
    assert remove_stale_temporaries(out) == [aside]
    assert out.is_dir()


def test_a_stop_in_a_weakset_callback_is_delivered_again():
    # WeakSet's callback lives in _weakrefset.py, where Python prints and drops exceptions.
    namespace = {}
    source = "import sys\ndef callback():\n    return sys._getframe()\n"
    exec(compile(source, os.path.join(os.sep, "lib", "_weakrefset.py"), "exec"), namespace)
    assert cli._swallowed_here(namespace["callback"]())
    assert not cli._swallowed_here(sys._getframe())


def test_a_lost_stop_ends_a_command_that_writes_nothing(synthetic_cube, monkeypatch, capsys):
    info = cli._cmd_info

    def stopped_info(args):
        _stop.request_stop(signal.SIGTERM)  # and its exception swallowed
        return info(args)

    monkeypatch.setattr(cli, "_cmd_info", stopped_info)
    assert cli.main(["info", str(synthetic_cube)]) == 128 + signal.SIGTERM
    assert "terminated: nothing was left half-written" in capsys.readouterr().err


def test_a_signal_ignored_at_the_start_stays_ignored(synthetic_cube, monkeypatch):
    # nohup ignores SIGHUP so that a long run outlives its terminal; a script's background
    # job ignores SIGINT. Installing our handler over that would stop what should run on.
    seen = {}
    info = cli._cmd_info

    def recording_info(args):
        seen.update({s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM)})
        return info(args)

    monkeypatch.setattr(cli, "_cmd_info", recording_info)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        assert cli.main(["info", str(synthetic_cube)]) == 0
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert seen[signal.SIGHUP] == signal.SIG_IGN
    assert seen[signal.SIGTERM] is cli._stop


def test_ctrl_c_while_the_parser_imports_is_one_line(tmp_path):
    # The parser imports scikit-learn and SciPy (about a second): a Ctrl-C then used to
    # print a KeyboardInterrupt traceback.
    import subprocess

    code = (
        "import os, signal, sklearn_sfr.cli as cli\n"
        "build = cli.build_parser\n"
        "def interrupted():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return build()\n"
        "cli.build_parser = interrupted\n"
        "raise SystemExit(cli.main(['info', 'missing.h5']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=default_signals,
    )
    assert done.returncode == 128 + signal.SIGINT, done.stderr
    assert done.stderr == "interrupted: nothing was left half-written\n"
