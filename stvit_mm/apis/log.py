"""Warnings given while a config is prepared, before the Runner exists."""
import logging

from mmengine.logging import print_log

__all__ = ['warn']


def warn(msg: str) -> None:
    """Print a warning through mmengine's current logger (the Runner's log
    does not exist yet when the config is adjusted).

    Args:
        msg (str): The warning.
    """
    print_log(msg, logger='current', level=logging.WARNING)
