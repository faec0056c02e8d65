"""Pack what ``splitinf train`` reads into one small folder, to carry to a lent GPU machine (run by hand).

A remote machine sees only the repository and what is carried with it (64 MiB in all, the tracked files
included), not ``../shared``. This writes, under OUT:

* ``data/voc2007-trainval-roboflow/``: the 2,840 VOC2007 trainval photos, shrunk by ``--scale`` and
  re-encoded as WebP at ``--quality``, with the two subset listings rewritten to them (0.65 / 60: 25 MiB
  instead of 105; the teacher's targets are computed on the same re-encoded pixels, so the distillation
  stays consistent, but the pictures are softer than the originals — say so beside any result);
* ``data/intel-sample-videos/``: the two videos the training reads, as they are;
* ``home/weights/``: the imported person detector and its sha256 record;
* ``whl/``: this checkout's own wheel and constriction's (x86-64, CPython 3.12), which the machine lacks.

Then point the run at it: ``SPLITINF_DATA=OUT/data SPLITINF_HOME=OUT/home`` (``lab/tools/gpu_train.sh`` does).

    .venv/bin/python lab/tools/pack_training_data.py .gpu
"""

import argparse
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import cv2
from tqdm import tqdm

from splitinf.data import CAR_VIDEO, PERSON_VIDEO, data_root
from splitinf.label_free import VOC, VOC_LISTS
from splitinf.models.pretrained import person_weights

REPO = Path(__file__).resolve().parents[2]  # the checkout this lab tool lives in


def pack_photos(out: Path, scale: float, quality: int) -> int:
    """Re-encode the listed VOC photos; return their bytes."""
    source, target = data_root() / VOC, out / "data" / VOC
    (target / "img").mkdir(parents=True, exist_ok=True)
    total = 0
    for listing in VOC_LISTS:
        lines = []
        for line in tqdm((source / listing).read_text().splitlines(), desc=listing, unit="photo"):
            voc_id, relative = line.split(maxsplit=1)
            image = cv2.imread(str(source / relative), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"VOC photo {source / relative} cannot be decoded")
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            ok, encoded = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, quality])
            if not ok:
                raise ValueError(f"OpenCV could not encode {source / relative} as WebP (quality {quality})")
            name = f"img/{voc_id}.webp"
            (target / name).write_bytes(encoded.tobytes())
            total += len(encoded)
            lines.append(f"{voc_id} {name}")
        (target / listing).write_text("\n".join(lines) + "\n")
    return total


def pack_wheels(out: Path) -> None:
    wheels = out / "whl"
    wheels.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO), "-w", str(wheels)],
                   check=True)
    subprocess.run([*pip, "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                    "--implementation", "cp", "--platform", "manylinux_2_17_x86_64", "-d", str(wheels),
                    f"constriction=={version('constriction')}"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (git-ignored, e.g. .gpu)")
    parser.add_argument("--scale", type=float, default=0.65, help="photo size factor (default 0.65)")
    parser.add_argument("--quality", type=int, default=60, help="WebP quality (default 60)")
    args = parser.parse_args()
    photos = pack_photos(args.out, args.scale, args.quality)
    for video in (PERSON_VIDEO, CAR_VIDEO):  # at the same relative paths, where training looks for them
        (args.out / "data" / video).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_root() / video, args.out / "data" / video)
    weights = args.out / "home" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    imported = person_weights()  # imports them first if this machine has not yet
    for source in (imported, imported.with_suffix(".json"), imported.parent / "NOTICE"):
        if source.is_file():
            shutil.copy(source, weights)
    pack_wheels(args.out)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"photos {photos / 2**20:.1f} MiB, all {total / 2**20:.1f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
