"""Fixtures for the Python binding tests. The generated package `fenlei` (bindings + library) is
found through FENLEI_PY_BINDINGS, set by scripts/test-python.sh."""

import os
import sys

import pytest

_bindings = os.environ.get("FENLEI_PY_BINDINGS")
if not _bindings:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    _bindings = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target")), "bindings", "python")
sys.path.insert(0, _bindings)

import fenlei  # noqa: E402

STANDARD_ID = "hohhot-residential"
VERSION = "2026.1"
NEXT_VERSION = "2026.2"
COMMUNITY = "150102-0001"
INSPECTOR = "inspector-7"


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "fenlei.sqlite")


@pytest.fixture
def store(store_path):
    return fenlei.FenleiStore.open(store_path)


@pytest.fixture
def loaded(store):
    """A store holding the sample standard and city."""
    store.import_standard(fenlei.sample_standard_toml())
    store.import_communities_csv(fenlei.sample_city_csv())
    return store


@pytest.fixture
def inspection_id(loaded):
    return loaded.create_inspection(
        fenlei.NewInspection(
            community_id=COMMUNITY,
            standard_id=STANDARD_ID,
            standard_version=VERSION,
            kind=fenlei.InspectionKind.DAILY_PATROL,
        ),
        INSPECTOR,
    )


def ctx(user=INSPECTOR, reason=None):
    return fenlei.EditContext(user_id=user, amendment_reason=reason)
