"""``python no_torch.py ARGS…``: ``splitinf-device ARGS…`` in a process where torch (and the edge's other
packages) cannot be imported, as on a board's install: an import of any of them fails as if absent."""

import sys

ABSENT = ("torch", "torchvision", "constriction", "matplotlib", "faster_coco_eval", "tqdm")


class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (absent from a board install)", name=name)
        return None


sys.meta_path.insert(0, _Absent())
sys.argv[0] = "splitinf-device"
from splitinf.cli import device_main  # noqa: E402

sys.exit(device_main())
