"""What the tools do, as functions: each tool is argparse plus one call."""
from .cli import add_common_args, parse_with_common_args, run_kwargs
from .config import SCOPES, get_scope, import_library, load_config
from .convert_release import ConversionError, convert_release
from .machine import adapt_to_cpu, init_cpu_distributed
from .preflight import (check_checkpoint, check_data, check_pretrained,
                        iter_pretrained, report_problems)
from .runner import build_runner, close_distributed
from .safeguards import install_safeguards
from .test import build_test_config, run_test
from .train import build_train_config, run_train
from .work_dir import (auto_resume_checkpoint, check_work_dir,
                       existing_checkpoints, set_work_dir)

__all__ = [
    'SCOPES', 'get_scope', 'import_library', 'load_config', 'ConversionError',
    'convert_release', 'add_common_args', 'parse_with_common_args',
    'run_kwargs',
    'adapt_to_cpu', 'init_cpu_distributed', 'check_checkpoint', 'check_data',
    'check_pretrained', 'iter_pretrained', 'report_problems', 'build_runner',
    'close_distributed',
    'install_safeguards', 'build_test_config', 'run_test',
    'build_train_config', 'run_train', 'auto_resume_checkpoint',
    'check_work_dir', 'existing_checkpoints', 'set_work_dir'
]
