"""One export of the shipped bottleneck and prefilter per session (a small calibration set: these tests check
the plumbing and fp32 exactness, not int8 accuracy, which ``splitinf bench device`` measures)."""

from __future__ import annotations

import pytest
from splitinf.head import load_prefilter

from splitinf.commands.export import export
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.weights.checkpoints import DEFAULT_PREFILTER, default_bottleneck, find_checkpoint


@pytest.fixture(scope="session")
def shipped_setup() -> ModelSetup:
    return ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))


@pytest.fixture(scope="session")
def exported(shipped_setup, tmp_path_factory):
    """(folder, manifest) of the shipped head, its prefilter and the whole detector at fp32 and int8."""
    folder = tmp_path_factory.mktemp("exported")
    path = find_checkpoint(DEFAULT_PREFILTER)
    manifest = export(shipped_setup, load_prefilter(path, DEFAULT_MODEL), path.name, folder, calibration=8,
                      local=True, progress=False)
    return folder, manifest
