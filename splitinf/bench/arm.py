"""``splitinf bench arm``: ``splitinf-device`` on aarch64 under emulation, against an x86 ``splitinf-edge``.

There is no board here, so this builds an aarch64 user-space from the registries alone, in ``--root``:

- ``qemu-user`` 10 from Debian 13 (static; Debian 12's 7.2 hands ONNX Runtime the host's x86 ``/proc/cpuinfo``
  and it crashes at import), unpacked with ``dpkg -x``;
- Debian 12's arm64 Python 3.11 and the C libraries it links (``apt-get download``, ``dpkg -x``), a private apt
  configuration so that the machine's own sources and package state are left alone;
- the board install (``pip install splitinf``: the project's base requirements, no torch) as aarch64 wheels
  from PyPI (``pip --platform manylinux…_aarch64 --only-binary :all: --target``).

Then it runs the exported int8 device half (``splitinf export``) on the same frames of the shared person video
twice against one x86 edge: natively on x86 and under ``qemu-aarch64 -cpu cortex-a72`` (a Raspberry Pi 4's
cores), and scores the aarch64 run's detections against the x86 run's (fidelity AP, the demo's measure).

    splitinf bench arm --json          # first run: ~1 minute of downloads, ~400 MB in build/arm

Emulation runs the head a few hundred times slower than the board would: the times here say nothing about a
board's speed (``splitinf bench device`` and the board cost model do); what this shows is that the install
and the runtime work on aarch64 and compute what x86 computes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import torch

from splitinf.board.manifest import MANIFEST
from splitinf.commands.export import DEFAULT_CALIBRATION, export
from splitinf.data import PERSON_VIDEO, resolve
from splitinf.experiments.demo import fidelity_ap, records_as_reference
from splitinf.report import format_table, print_json_line
from splitinf.runtime.processes import EdgeProcess, device_command, device_results, run_device
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.runtime.sources import FrameSource
from splitinf.weights.checkpoints import default_bottleneck

DEBIAN = "http://deb.debian.org/debian"
QEMU = "qemu-user"  # from trixie (Debian 13): qemu 10, statically linked
# Debian 12's arm64 Python 3.11 and what it links (apt-cache depends --recurse python3.11:arm64), plus the
# C++ and OpenMP runtimes that ONNX Runtime and numba's LLVM load.
ARM64_PACKAGES = (
    "python3.11", "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "gcc-12-base",
    "libgcc-s1", "libstdc++6", "libgomp1", "libbz2-1.0", "libcrypt1", "libdb5.3", "libexpat1", "libffi8",
    "liblzma5", "libncursesw6", "libtinfo6", "libreadline8", "libsqlite3-0", "libssl3", "libuuid1", "zlib1g",
    "libnsl2", "libtirpc3", "libgssapi-krb5-2", "libk5crypto3", "libkeyutils1", "libkrb5-3", "libkrb5support0",
    "libcom-err2",
)
WHEEL_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
COMPLETE = ".complete"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="build/arm", metavar="DIR",
                        help="where the aarch64 user-space is built (and reused) (default build/arm)")
    parser.add_argument("--frames", type=int, default=60, metavar="N",
                        help="frames of the shared person video (default 60; about 2 s each under emulation)")
    parser.add_argument("--start-frame", type=int, default=700,
                        help="the first frame (default 700, as the demo: people walk through it)")
    parser.add_argument("--cpu", default="cortex-a72",
                        help="the emulated CPU (default cortex-a72, a Raspberry Pi 4; cortex-a76 plays a Pi 5)")
    parser.add_argument("--rebuild", action="store_true", help="download and build the user-space again")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def run(command: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(command[:3])} …): {result.stderr.strip()[-800:]}")
    return result


def apt_options(apt: Path) -> list[str]:
    """apt-get options for a private configuration in ``apt``: its own sources, lists, cache and (empty)
    package state, the machine's trusted keys, amd64 + arm64; nothing of the machine's apt is changed."""
    return [f"-oDir::Etc={apt}", f"-oDir::Etc::sourcelist={apt / 'sources.list'}", "-oDir::Etc::sourceparts=-",
            "-oDir::Etc::trustedparts=/etc/apt/trusted.gpg.d", f"-oDir::State::Lists={apt / 'lists'}",
            f"-oDir::Cache={apt / 'cache'}", f"-oDir::State::status={apt / 'status'}",
            "-oAPT::Architecture=amd64", "-oAPT::Architectures::=amd64", "-oAPT::Architectures::=arm64",
            "-oDebug::NoLocking=1", "-oAPT::Sandbox::User=root"]


def board_requirements() -> list[str]:
    """The board install's requirements: the project's base dependencies (no extra)."""
    return [r for r in metadata.requires("splitinf") or [] if "extra ==" not in r]


def project_folder() -> Path:
    folder = Path(__file__).resolve().parents[2]
    if not (folder / "pyproject.toml").is_file():
        raise RuntimeError(f"splitinf bench arm installs the project from its checkout; {folder} is not one")
    return folder


def build_userspace(root: Path) -> None:
    """qemu, an arm64 Python sysroot and the board install, downloaded into ``root``."""
    apt, debs = root / "apt", root / "debs"
    for folder in (apt / "lists" / "partial", apt / "cache" / "archives" / "partial", debs):
        folder.mkdir(parents=True, exist_ok=True)
    (apt / "status").write_text("")
    (apt / "sources.list").write_text(f"deb [arch=arm64] {DEBIAN} bookworm main\n"
                                      f"deb [arch=amd64] {DEBIAN} trixie main\n")
    options = apt_options(apt)
    run(["apt-get", *options, "update"], "apt-get update (Debian's package index)")
    run(["apt-get", *options, "download", f"{QEMU}:amd64", *(f"{p}:arm64" for p in ARM64_PACKAGES)],
        "apt-get download", cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        run(["dpkg", "-x", str(deb), str(root / ("qemu" if deb.name.startswith(QEMU + "_") else "sysroot"))],
            f"dpkg -x {deb.name}")
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(site)]
    platforms = [option for p in WHEEL_PLATFORMS for option in ("--platform", p)]
    run([*pip, *platforms, "--python-version", "3.11", "--implementation", "cp", "--only-binary", ":all:",
         *board_requirements()], "pip install of the aarch64 wheels")
    run([*pip, "--no-deps", "--no-compile", str(project_folder())], "pip install of splitinf (pure Python)")
    (root / COMPLETE).write_text(json.dumps({"requirements": board_requirements()}))


def disk_mb(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20, 1)


def emulated_device(root: Path, cpu: str) -> list[str]:
    """The start of a command that runs ``splitinf-device`` on the emulated aarch64 Python."""
    return [str(root / "qemu" / "usr" / "bin" / "qemu-aarch64"), "-L", str(root / "sysroot"), "-cpu", cpu,
            str(root / "sysroot" / "usr" / "bin" / "python3.11"), "-P", "-c",
            "import sys; sys.argv[0] = 'splitinf-device'; from splitinf.cli import device_main; "
            "sys.exit(device_main())"]


def main(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    if args.rebuild or not (root / COMPLETE).is_file():
        print(f"building the aarch64 user-space in {root} …", file=sys.stderr, flush=True)
        build_userspace(root)
    setup = ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))
    exported = root / "exported"
    if not (exported / MANIFEST).is_file() or json.loads((exported / MANIFEST).read_text()).get(
            "fingerprint") != setup.fingerprint:
        print(f"exporting the device half into {exported} …", file=sys.stderr, flush=True)
        torch.set_num_threads(1)
        export(setup, None, None, exported, DEFAULT_CALIBRATION, local=False)
    source = str(resolve(PERSON_VIDEO))
    # Frames wait for the device (no realtime) and may take seconds each under emulation: no frame is stale.
    common = ["--mode", "split", "--engine", "onnx-int8", "--exported", str(exported), "--no-realtime", "--frames",
              str(args.frames), "--start-frame", str(args.start_frame), "--deadline-ms", "600000", "--threads", "1"]
    with tempfile.TemporaryDirectory() as scratch, EdgeProcess(["--threads", "1"]) as edge:
        native, emulated = Path(scratch) / "x86", Path(scratch) / "arm"
        native.mkdir(), emulated.mkdir()
        reference_summary, reference_frames = run_device(edge.address, source, native, common)
        started = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(root / "site"), "NUMBA_CACHE_DIR": str(root / "numba-cache")}
        run([*emulated_device(root, args.cpu), *device_command(edge.address, source, emulated, common)[1:]],
            "splitinf-device under qemu-aarch64", env=env, timeout=3600)
        wall_s = time.monotonic() - started
        summary, frames = device_results(emulated)
    first = FrameSource(source, realtime=False)
    size = tuple(next(first.frames(1)).image.shape[-2:])
    first.close()
    ap = fidelity_ap(frames, records_as_reference(reference_frames), size)
    same = sum(a.get("detections") == b.get("detections") for a, b in
               zip(sorted(frames, key=lambda f: f["frame"]), sorted(reference_frames, key=lambda f: f["frame"])))
    indices = sorted(f["frame"] for f in frames)
    result = {
        "arch": summary.get("machine"), "cpu": args.cpu, "frames": summary["frames"],
        "accounted": summary["accounted"], "edge": summary["counts"]["edge"],
        "each_frame_once": indices == list(range(len(indices))) and len(indices) == summary["frames"],
        "fidelity_ap": None if ap is None else round(ap, 4), "identical_detections": same,
        "bytes_per_frame": summary["bytes_per_frame"], "bytes_per_frame_x86": reference_summary["bytes_per_frame"],
        "reference_arch": reference_summary.get("machine"), "emulated_s_per_frame": round(wall_s / args.frames, 2),
        "board_install_mb": disk_mb(root / "site"), "sysroot_mb": disk_mb(root / "sysroot"),
    }
    print(format_table(["run", "arch", "frames", "accounted", "edge", "bytes/frame"],
                       [("x86 device", result["reference_arch"], reference_summary["frames"],
                         reference_summary["accounted"], reference_summary["counts"]["edge"],
                         reference_summary["bytes_per_frame"]),
                        ("emulated board", result["arch"], result["frames"], result["accounted"], result["edge"],
                         result["bytes_per_frame"])]))
    print(f"fidelity AP of the aarch64 detections against the x86 ones: {result['fidelity_ap']}; "
          f"identical on {same} of {len(frames)} frames; {result['emulated_s_per_frame']} s per frame emulated")
    if args.json:
        print_json_line(result)
    failed = [what for what, ok in (
        ("the device did not run on aarch64", result["arch"] == "aarch64"),
        ("not every frame was accounted once", result["each_frame_once"] and result["accounted"] == args.frames),
        ("not every frame was answered by the edge", result["edge"] == args.frames),
        ("fidelity AP below 0.95", (result["fidelity_ap"] or 0) >= 0.95)) if not ok]
    if failed:
        print("splitinf bench arm: " + "; ".join(failed), file=sys.stderr)
    return 1 if failed else 0
