import subprocess
import sys

import sklearn_sfr


def test_version():
    assert isinstance(sklearn_sfr.__version__, str)
    assert sklearn_sfr.__version__[0].isdigit()


def test_import_does_not_import_torch():
    code = (
        "import sys, sklearn_sfr, sklearn_sfr.datasets, sklearn_sfr.plotting, sklearn_sfr.cli;"
        "bad = [m for m in ('torch', 'skorch', 'matplotlib') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_lazy_subpackages():
    assert sklearn_sfr.datasets.load_hisscube is not None
    assert "datasets" in dir(sklearn_sfr)
