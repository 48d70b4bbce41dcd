"""Markdown tables and the number formats of the analysis reports."""
from typing import Optional, Sequence

__all__ = [
    'markdown_table', 'format_gflops', 'format_gmacs', 'format_params',
    'format_ms', 'format_mib', 'format_ratio'
]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table.

    Args:
        headers (Sequence[str]): Column titles.
        rows (Sequence[Sequence]): The rows; cells are written with
            ``str``, so numbers are expected pre-formatted.

    Returns:
        str: The table, without a trailing newline.
    """
    lines = ['| ' + ' | '.join(headers) + ' |',
             '|' + '|'.join('---' for _ in headers) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def format_gflops(gflops: float) -> str:
    """GFLOPs: one decimal, three significant digits below 10."""
    return f'{gflops:.1f}' if gflops >= 10 else f'{gflops:.3g}'


def format_gmacs(macs: Optional[int]) -> str:
    """Multiply-accumulates as GFLOPs (:func:`format_gflops`); ``'-'``
    for None."""
    return '-' if macs is None else format_gflops(macs / 1e9)


def format_params(params: Optional[int]) -> str:
    """Parameters in millions, two decimals; ``'-'`` for None."""
    return '-' if params is None else f'{params / 1e6:.2f}'


def format_ms(seconds: Optional[float]) -> str:
    """Milliseconds: integers from 100 ms, three significant digits below;
    ``'-'`` for None."""
    if seconds is None:
        return '-'
    ms = seconds * 1e3
    return f'{ms:.0f}' if ms >= 100 else f'{ms:.3g}'


def format_mib(mib: Optional[float]) -> str:
    """MiB as an integer; ``'-'`` for None."""
    return '-' if mib is None else f'{mib:.0f}'


def format_ratio(num: Optional[float], den: Optional[float],
                 digits: int = 2) -> str:
    """``num / den`` with ``digits`` decimals; ``'-'`` when either is None
    or ``den`` is not positive."""
    if num is None or den is None or den <= 0:
        return '-'
    return f'{num / den:.{digits}f}'
