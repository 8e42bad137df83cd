"""Every job function the services queue by name is one the workers have (#24).

RQ stores the dotted name with each queued job and imports it when a worker takes the job:
a name that no longer resolves fails only then, on a worker, for every job queued with it.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import holovitals_sync.services
from holovitals_sync.services.platform import job_functions

SERVICES = Path(holovitals_sync.services.__file__).parent


@pytest.mark.parametrize("name", job_functions.ALL)
def test_each_name_resolves_to_a_worker_function(name: str):
    module, function = name.rsplit(".", 1)
    assert module.startswith("workers."), name
    found = getattr(importlib.import_module(module), function, None)
    assert inspect.isfunction(found), f"{name} is not a function of the workers"


def test_the_table_lists_every_name_it_defines():
    defined = {
        value
        for key, value in vars(job_functions).items()
        if key.isupper() and isinstance(value, str)
    }
    assert defined == set(job_functions.ALL)


def test_no_service_names_a_worker_function_outside_the_table():
    """A string naming `workers.<module>.<function>` anywhere else in services/ would bypass
    the table (and this test's check that it resolves)."""
    pattern = re.compile(r"""["']workers\.\w+\.\w+["']""")
    table = SERVICES / "platform" / "job_functions.py"
    elsewhere = {
        str(path.relative_to(SERVICES)): pattern.findall(path.read_text())
        for path in SERVICES.rglob("*.py")
        if path != table
    }
    assert {path: found for path, found in elsewhere.items() if found} == {}
