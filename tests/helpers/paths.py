"""Paths of the repository that tests read, defined once."""
from pathlib import Path

#: The repository root (``tests/`` is one level below it).
REPO = Path(__file__).resolve().parents[2]

#: Files checked into ``tests/data``.
TEST_DATA = REPO / 'tests' / 'data'
#: The golden fixture, saved by the released code (see README.md).
PARITY = TEST_DATA / 'stvit_r_official_parity.pth'
#: The released ImageNet classifier's golden fixture: per model, the
#: constructor arguments, the state dict as it saves it (ImageNet layout),
#: inputs and its logits and stage outputs (see README.md).
IMAGENET_RELEASE_WEIGHTS = TEST_DATA / 'stvit_r_imagenet_parity.pth'

CONVERTER = REPO / 'tools' / 'model_converters' / 'stvit_r_official_to_mm.py'

QUICKSTART_DET = 'configs/quickstart/stvit_r_swin_quickstart_coco.py'
QUICKSTART_SEG = 'configs/quickstart/stvit_r_swin_quickstart_ade.py'
