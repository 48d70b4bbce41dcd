# The stack's versions first: too old a torch, mmengine or mmcv is named in
# one line instead of failing somewhere inside.
from .version import __version__, check_minimum_versions

check_minimum_versions()

# Checkpoint safety first, before anything can load a checkpoint: torch's
# weights-only unpickler must accept the types the mmengine Runner writes,
# and mmengine's loaders must go through the safe loader (see
# stvit_mm/utils/checkpoint.py).
from .utils.checkpoint import (  # noqa: E402
    register_checkpoint_loaders, register_safe_globals)

register_safe_globals()
register_checkpoint_loaders()

# Modules registered into the OpenMMLab registries (imported for their side
# effects) go below.
from . import models  # noqa: E402,F401
# Hooks and transforms (atomic checkpoints, the resume guard, named image
# errors) registered for stock mmdet/mmseg tools too.
from . import engine  # noqa: E402,F401
