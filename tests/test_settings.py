"""The settings hash identifies a result: values and the method's code (core.settings.method_fingerprint)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import METHOD_MODULES, NOT_METHOD_MODULES, DetectionSettings

REPO = Path(__file__).resolve().parent.parent
HASH_OF_DEFAULTS = "from core.settings import DetectionSettings; print(DetectionSettings().hash)"


def _python(code: str, root: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_core_module_detection_imports_is_declared_method_or_not():
    loaded = json.loads(_python("import core.batch, sys, json; "
                                "print(json.dumps(sorted(m for m in sys.modules if m.startswith('core.'))))", REPO))
    names = {m.removeprefix("core.") for m in loaded}
    assert names - set(METHOD_MODULES) - set(NOT_METHOD_MODULES) == set(), "declare the new module in core.settings"
    assert set(METHOD_MODULES) <= names | {"batch"}


def test_hash_changes_with_a_hard_coded_number_and_only_then(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "core", copy / "core", ignore=shutil.ignore_patterns("__pycache__", "data"))
    before = _python(HASH_OF_DEFAULTS, copy)
    assert before == _python(HASH_OF_DEFAULTS, copy) == DetectionSettings().hash  # stable across processes
    rules = copy / "core" / "rules.py"
    text = rules.read_text()
    assert "LOCAL_SPAN_MIN_KM = 15.0" in text
    rules.write_text(text.replace("LOCAL_SPAN_MIN_KM = 15.0", "LOCAL_SPAN_MIN_KM = 16.0"))
    assert _python(HASH_OF_DEFAULTS, copy) != before
    rules.write_bytes(text.replace("\n", "\r\n").encode())  # line endings of another checkout: same method
    assert _python(HASH_OF_DEFAULTS, copy) == before


def test_equal_values_hash_equally_and_a_value_changes_it():
    a, b = DetectionSettings(), DetectionSettings.preset("recommended")
    assert a.hash == b.hash and len(a.hash) == 12
    assert a.replace({"fit.window_km": 90.0}).hash != a.hash


def test_contradictions_name_both_keys_and_a_toml_file_with_one_is_refused():
    from core.settings import DetectionSettings

    for name in DetectionSettings.preset_names():
        assert DetectionSettings.preset(name).contradictions() == []
    cases = [({"fit.sigma_min_km": 20.0, "fit.sigma_max_km": 5.0}, ("fit.sigma_min_km", "fit.sigma_max_km")),
             ({"rules.too_narrow.min_sigma_km": 12.0, "fit.sigma_max_km": 10.0},
              ("rules.too_narrow.min_sigma_km", "fit.sigma_max_km")),
             ({"rules.too_wide.n_sigma": 10.0, "fit.sigma_min_km": 20.0, "fit.sigma_max_km": 50.0,
               "fit.window_km": 300.0}, ("rules.too_wide.n_sigma", "fit.sigma_min_km", "fit.window_km"))]
    for values, keys in cases:
        settings = DetectionSettings().replace(values)
        [message] = settings.contradictions()
        assert all(k in message for k in keys), message
        text = settings.to_toml()
        with pytest.raises(ValueError) as refused:
            DetectionSettings.from_toml(text, source="mine.toml")
        assert str(refused.value).startswith("mine.toml: ") and all(k in str(refused.value) for k in keys)
    # a rule that is off cannot contradict
    off = DetectionSettings().replace({"rules.too_narrow.min_sigma_km": 12.0, "fit.sigma_max_km": 10.0,
                                       "rules.too_narrow.enabled": False})
    assert off.contradictions() == [] and DetectionSettings.from_toml(off.to_toml()) == off
