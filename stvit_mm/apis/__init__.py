"""What the tools do, as functions: each tool is argparse plus one call."""
from .convert_release import ConversionError, convert_release

__all__ = ['ConversionError', 'convert_release']
