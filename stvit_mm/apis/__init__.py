"""What the tools do, as functions: each tool is argparse plus one call."""
from .config import SCOPES, get_scope, import_library, load_config
from .convert_release import ConversionError, convert_release

__all__ = [
    'SCOPES', 'get_scope', 'import_library', 'load_config', 'ConversionError',
    'convert_release'
]
