"""Loading checkpoints without letting them run code.

A ``.pth`` file is a pickle, and a pickle can name any importable callable and
ask for it to be called while loading. torch >= 2.6 loads with
``weights_only=True`` by default: its restricted unpickler builds only
tensors, plain containers and globals on an allow-list, and refuses everything
else. mmengine 0.10.7 calls ``torch.load`` without the argument, so that is
what its loaders get. Two kinds of file then stop loading:

* checkpoints written by the mmengine ``Runner`` (``test.py``, ``--resume``,
  ``load_from``): their ``message_hub`` holds ``HistoryBuffer`` objects and
  numpy arrays. :func:`register_safe_globals` allow-lists exactly what they
  need.
* released third-party checkpoints whose metadata holds objects of classes we
  do not have or do not want to import (an ``argparse.Namespace`` of training
  arguments, an mmcv 1.x ``Config``, a yacs ``CfgNode``).
  :func:`load_untrusted_checkpoint` loads them with inert stand-ins.

:func:`register_checkpoint_loaders` routes mmengine's local-file and URL
loaders (``load_from``, ``resume``, ``init_cfg=dict(type='Pretrained')``)
through :func:`load_untrusted_checkpoint`, so every path gives the same
protection and the same explanations.

One concern per module:

* ``errors``: the exceptions;
* ``safe_globals``: the allow-list for Runner checkpoints;
* ``refusals``: globals no checkpoint may name;
* ``stand_ins``: the inert records of foreign objects;
* ``file_checks``: judging a file before unpickling it;
* ``untrusted``: the stand-in load itself;
* ``fit``: weights that must fit a model exactly;
* ``download``: checkpoints given by URL, cached only when whole;
* ``mmengine_loaders``: mmengine's loaders routed through all of this.
"""
from .errors import (CheckpointError, CheckpointMismatchError,
                     CheckpointNotFoundError)
from .download import (CheckpointDownloadError, cache_path,
                       fetch_checkpoint)
from .file_checks import check_checkpoint_file
from .fit import check_state_dict_fits
from .mmengine_loaders import (load_from_local, load_url,
                               register_checkpoint_loaders)
from .safe_globals import register_safe_globals
from .stand_ins import StandIn, StandInDict
from .untrusted import load_untrusted_checkpoint

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'CheckpointMismatchError',
    'StandIn', 'StandInDict', 'register_safe_globals',
    'load_untrusted_checkpoint', 'check_checkpoint_file',
    'check_state_dict_fits', 'register_checkpoint_loaders',
    'load_from_local', 'load_url', 'CheckpointDownloadError',
    'cache_path', 'fetch_checkpoint'
]
