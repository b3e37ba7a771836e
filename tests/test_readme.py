"""The README's Python snippet runs as printed, and runs again (a user reruns a cell)."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def _snippet():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Ten lines of Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_snippet_runs_twice(tmp_path, monkeypatch, capsys):
    code = _snippet()
    assert "n_objects=2000" in code
    code = code.replace("n_objects=2000", "n_objects=60")  # the same code, a smaller cube
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        exec(compile(code, str(README), "exec"), {})
        assert capsys.readouterr().out.startswith("RMSE ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.h5"]
