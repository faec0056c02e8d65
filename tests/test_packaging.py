"""The package-dir mapping of pyproject.toml must list every package of the source tree."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_source_package_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]) if relative.parts else name)
    assert found == set(config["packages"])


# --- a regular install, as a user gets it --------------------------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import sysconfig  # noqa: E402

import pytest  # noqa: E402

from splitinf.data import PERSON_VIDEO, data_root  # noqa: E402
from splitinf.runtime.processes import EdgeProcess, run_device  # noqa: E402
from splitinf.runtime.setup import DEFAULT_MODEL, DEFAULT_SPLIT, ModelSetup  # noqa: E402
from splitinf.weights.checkpoints import DEFAULT_BOTTLENECK, default_bottleneck  # noqa: E402


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """A fresh venv outside the checkout with this project installed by a regular (non-editable) ``pip
    install``. Its dependencies come from this environment through a .pth line (torch alone is gigabytes),
    which does not carry this environment's editable finder: ``splitinf`` there is the installed copy."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path("
                                "'purelib'))"], capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)],
                   check=True, timeout=600, capture_output=True)
    env = {**os.environ, "SPLITINF_DATA": str(data_root().resolve())}
    return venv, env


@pytest.mark.slow  # the fast representative: test_every_source_package_is_installed
def test_a_regular_install_carries_the_shipped_checkpoints(installed):
    venv, env = installed
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import splitinf, splitinf.weights.checkpoints as c;"
                            "print(splitinf.__file__); print(c.default_bottleneck())"], capture_output=True,
                           text=True, check=True, cwd=venv.parent, env=env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where  # the installed copy, not the checkout
    assert Path(where[1]).name == DEFAULT_BOTTLENECK
    listing = subprocess.run([str(venv / "bin" / "splitinf"), "models", "--checkpoints", "--json"],
                             capture_output=True, text=True, check=True, cwd=venv.parent, env=env).stdout
    names = {c["name"] for c in json.loads(listing.splitlines()[-1])["checkpoints"]}
    assert {DEFAULT_BOTTLENECK, "prefilter_person_t7.pt"} <= names


@pytest.mark.slow
def test_installed_edge_and_device_use_the_shipped_bottleneck_with_the_checkouts_fingerprint(installed, tmp_path,
                                                                                           monkeypatch):
    venv, env = installed
    expected = ModelSetup.build(DEFAULT_MODEL, None, DEFAULT_SPLIT, str(default_bottleneck())).fingerprint
    flags = ["--threads", "1"]
    monkeypatch.setenv("SPLITINF_DATA", env["SPLITINF_DATA"])  # the programs run outside the checkout
    with EdgeProcess(flags, bin_dir=venv / "bin", cwd=venv.parent) as edge:
        summary, frames = run_device(edge.address, PERSON_VIDEO, tmp_path, [*flags, "--frames", "3", "--no-realtime"],
                                     bin_dir=venv / "bin", cwd=venv.parent)
        edge_summary = edge.stop()
    assert summary["fingerprint"] == edge_summary["fingerprint"] == expected
    assert sum(summary["counts"].values()) == len(frames) == 3 and summary["counts"]["edge"] >= 1
