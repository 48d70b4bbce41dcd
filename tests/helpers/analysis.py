"""Helpers of the analysis tests: tiny Swin baselines, the tools as a user
runs them, and reading markdown tables."""
import subprocess
import sys

from .paths import REPO

# Tiny Swin baselines of the quickstart models (same stages and widths), so
# that comparisons run in seconds: SWIN_BASELINE.format(base=QUICKSTART_*).
TINY_SWIN = dict(type='SwinTransformer', embed_dims=32, depths=[2, 2, 6, 2],
                 num_heads=[1, 2, 4, 8], window_size=7,
                 out_indices=(0, 1, 2, 3), init_cfg=None)
_ESCAPED = repr(TINY_SWIN).replace('{', '{{').replace('}', '}}')
SWIN_BASELINE = ("_base_ = '{base}'\n"
                 f'model = dict(backbone=dict(_delete_=True, **{_ESCAPED}))\n')


def run_analysis_tool(relpath: str, *args):
    """A tool as a user runs it: its exit status, stdout and stderr."""
    return subprocess.run([sys.executable, str(REPO / relpath), *args],
                          capture_output=True, text=True, timeout=300,
                          cwd=str(REPO))


def table_rows(text: str, first_cell: str = None):
    """Cells of the markdown table rows in ``text`` (header and separator
    rows excluded), optionally only rows whose first cell matches."""
    rows = []
    for line in text.splitlines():
        if not line.startswith('|') or set(line) <= set('|-'):
            continue
        cells = [c.strip() for c in line.strip('|').split('|')]
        rows.append(cells)
    header = rows[0] if rows else []
    rows = [r for r in rows if r != header and r[0] != header[0]]
    if first_cell is not None:
        rows = [r for r in rows if r[0] == first_cell]
    return header, rows


def column(header, row, name):
    return row[header.index(name)]


