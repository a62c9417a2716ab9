"""Load RobustBench 1.1.1's architecture modules by file path, without importing ``robustbench``.

``robustbench/__init__.py`` imports torchvision (unusable here), but the architecture files under
``robustbench/model_zoo/architectures/`` are plain torch. ``importlib.util.find_spec`` on the
top-level package only *locates* it (runs nothing), so the files are found in site-packages and
executed on their own. Tests skip with a reason when the wheel is not installed.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

VERSION = "1.1.1"


def architectures_dir() -> Path | None:
    spec = importlib.util.find_spec("robustbench")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model_zoo" / "architectures"
    return folder if folder.is_dir() else None


def load(name: str) -> ModuleType:
    """``wide_resnet``, ``dm_wide_resnet`` or ``resnet`` from the installed RobustBench, by path."""
    folder = architectures_dir()
    if folder is None:
        pytest.skip(f"robustbench=={VERSION} is not installed (make setup installs it with --no-deps)")
    mod_name = f"_rb_reference_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module
