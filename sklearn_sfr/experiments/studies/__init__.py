"""The studies of the SFR report, one object per file (:class:`Study`), and their registry.

Adding a study is one new file here (a :class:`Study` subclass and its ``STUDY`` instance)
and one line in :data:`REGISTRY`; the report, the settings and the CLI's ``--studies`` take it
from there.
"""

from __future__ import annotations

from importlib import import_module

from ._base import Study, StudyRun

#: The studies' modules (``studies/<name>.py``), in the order they run and are reported.
_MODULES = (
    "baseline",
    "modality",
    "fusion",
    "resolution",
    "flag",
    "isolation",
    "label_efficiency",
)

#: Every study of the report by name: each module's ``STUDY``.
REGISTRY = {
    study.name: study
    for study in (import_module(f".{module}", __name__).STUDY for module in _MODULES)
}

__all__ = ["REGISTRY", "Study", "StudyRun"]
