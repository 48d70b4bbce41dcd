"""The semantic-token figure (``tools/analysis/vis_semantic_tokens.py``):
the input with its stage-3 window grid, each chosen window's semantic
tokens' generation attention per step, and what the recovery reads back for
a few image tokens. The weights come from :mod:`.token_maps`.
"""
import io
from typing import List, Sequence, Tuple

import numpy as np
import torch

from .token_maps import (UnitRecord, generation_maps, recovery_weights,
                         semantic_cells)

__all__ = ['TOKEN_STRIDE', 'default_windows', 'default_queries',
           'draw_token_figure']

#: Input pixels per stage-3 token side (stem /4, two patch mergings /2).
TOKEN_STRIDE = 16
CMAP = 'inferno'
MARK_COLOURS = ('#00e5ff', '#7cff4d', '#ff4dd2', '#ffd84d')


def _real_windows(record: UnitRecord, shape: Tuple[int, int]) -> List:
    """Windows that hold at least one image token (row, col)."""
    nWh, nWw = record.geometry.num_windows
    H, W = record.image.shape[1:3]
    w = record.window_size
    return [(r, c) for r in range(nWh) for c in range(nWw)
            if r * w < H and c * w < W]


def default_windows(record: UnitRecord, rgb: np.ndarray) -> List:
    """The window at the centre of the token map and the most textured
    other window (largest pixel standard deviation): one where the tokens
    see the middle of the scene, one where they see the most structure."""
    H, W = record.image.shape[1:3]
    w = record.window_size
    centre = ((H // 2) // w, (W // 2) // w)
    side = w * TOKEN_STRIDE
    others = [win for win in _real_windows(record, rgb.shape[:2])
              if win != centre]
    if not others:
        return [centre]

    def texture(win):
        r, c = win
        return float(rgb[r * side:(r + 1) * side,
                         c * side:(c + 1) * side].std())

    return [centre, max(others, key=texture)]


def default_queries(record: UnitRecord, windows: Sequence) -> List:
    """Image tokens whose recovery is drawn: the centre token of each
    chosen window, and the top-left token of the first one (a window edge,
    where the neighbourhood reaches across into the next windows)."""
    H, W = record.image.shape[1:3]
    w = record.window_size
    queries = [(min(r * w + w // 2, H - 1), min(c * w + w // 2, W - 1))
               for r, c in windows]
    queries.append((windows[0][0] * w, windows[0][1] * w))
    return list(dict.fromkeys(queries))[:3]


def _box(ax, rows, cols, colour, style='-', width=1.5):
    from matplotlib.patches import Rectangle
    s = TOKEN_STRIDE
    ax.add_patch(Rectangle((cols[0] * s - .5, rows[0] * s - .5),
                           (cols[1] - cols[0]) * s, (rows[1] - rows[0]) * s,
                           fill=False, edgecolor=colour, linestyle=style,
                           linewidth=width))


def _image_panel(ax, grey: np.ndarray, extent_rows, extent_cols):
    s = TOKEN_STRIDE
    ax.imshow(grey, cmap='gray', vmin=0, vmax=255)
    ax.set_xlim(extent_cols[0] * s - .5, extent_cols[1] * s - .5)
    ax.set_ylim(extent_rows[1] * s - .5, extent_rows[0] * s - .5)
    ax.set_xticks([])
    ax.set_yticks([])


def _semantic_grid(weights: torch.Tensor, record: UnitRecord) -> np.ndarray:
    """(M,) weights in window order -> (nWh*s, nWw*s) grid."""
    nWh, nWw = record.geometry.num_windows
    s = record.geometry.sample_window_size
    return weights.reshape(nWh, nWw, s, s).permute(0, 2, 1, 3).reshape(
        nWh * s, nWw * s).numpy()


def draw_token_figure(record: UnitRecord, rgb: np.ndarray, windows: List,
                      queries: List, title: str) -> bytes:
    """Draw the figure and return it as PNG bytes.

    Args:
        record (UnitRecord): One unit's recorded inputs (batch item 0).
        rgb (np.ndarray): The model's input as RGB (H, W, 3) uint8.
        windows (list[tuple[int, int]]): Windows (row, col) to detail.
        queries (list[tuple[int, int]]): Stage-3 image tokens (row, col)
            whose recovery attention is drawn.
        title (str): First title line (config, weights, unit).

    Returns:
        bytes: The PNG.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    geo, w = record.geometry, record.window_size
    s = geo.sample_window_size
    heads = record.unit.recovery_block.attn.num_heads
    per_window = [generation_maps(record, win) for win in windows]
    steps = len(per_window[0])
    ncols = max(s * s, 9)
    nrows = 1 + len(windows) * steps
    fig = plt.figure(figsize=(1.75 * ncols + 1.2, 3.6 + 2.05 * (nrows - 1)))
    grid = fig.add_gridspec(nrows, ncols + 1, width_ratios=[1] * ncols + [.08],
                            height_ratios=[1.8] + [1] * (nrows - 1),
                            hspace=.45, wspace=.12)
    grey = rgb.astype(np.float32) @ np.array([.299, .587, .114])
    H, W = record.image.shape[1:3]
    side = w * TOKEN_STRIDE

    # Overview: the input, the window grid, the chosen windows and queries.
    ax = fig.add_subplot(grid[0, :3])
    ax.imshow(rgb)
    for x in range(0, rgb.shape[1] + 1, side):
        ax.axvline(x - .5, color='white', linewidth=.6, alpha=.8)
    for y in range(0, rgb.shape[0] + 1, side):
        ax.axhline(y - .5, color='white', linewidth=.6, alpha=.8)
    for i, (r, c) in enumerate(windows):
        colour = MARK_COLOURS[i % len(MARK_COLOURS)]
        _box(ax, (r * w, r * w + w), (c * w, c * w + w), colour, width=2.5)
        ax.text(c * side + 4, r * side + 4, f'W{i + 1}', color=colour,
                fontsize=11, fontweight='bold', va='top')
    for i, (r, c) in enumerate(queries):
        ax.plot((c + .5) * TOKEN_STRIDE, (r + .5) * TOKEN_STRIDE, marker='*',
                markersize=13, color='white', markeredgecolor='black')
        ax.text((c + 1) * TOKEN_STRIDE, r * TOKEN_STRIDE, f'q{i + 1}',
                color='white', fontsize=10, fontweight='bold')
    ax.set_title(f'input {rgb.shape[1]}x{rgb.shape[0]} px as the model\n'
                 f'sees it; grid: stage-3 windows of {w}x{w} tokens '
                 f'({side} px)', fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])

    # Recovery: what a few image tokens read back from the semantic tokens.
    weights = recovery_weights(record, queries)[0][0].mean(0)  # Q, M+1
    rec_norm = Normalize(0, float(weights[:, :-1].max()))
    extent = (-.5, -(-W // w) * side - .5, -(-H // w) * side - .5, -.5)
    width = max(2, (ncols - 3) // max(len(queries), 1))
    for i, (r, c) in enumerate(queries):
        ax = fig.add_subplot(grid[0, 3 + i * width:3 + (i + 1) * width])
        _image_panel(ax, grey, (0, -(-H // w) * w), (0, -(-W // w) * w))
        ax.imshow(_semantic_grid(weights[i, :-1], record), cmap=CMAP,
                  norm=rec_norm, alpha=.7, extent=extent,
                  interpolation='nearest')
        ax.plot((c + .5) * TOKEN_STRIDE, (r + .5) * TOKEN_STRIDE, marker='*',
                markersize=13, color='white', markeredgecolor='black')
        pad = float(weights[i, -1])
        ax.set_title(f'recovery: image token q{i + 1} ({r},{c})\nreads '
                     'back from the semantic tokens' +
                     (f' ({pad:.0%} padding)' if pad >= .005 else ''),
                     fontsize=9)
    cax = fig.add_subplot(grid[0, ncols])
    fig.colorbar(ScalarMappable(rec_norm, CMAP), cax=cax).set_label(
        'weight per semantic token', fontsize=8)

    # Generation: each semantic token's attention over its neighbourhood.
    rows_c, cols_c = semantic_cells(record)
    nWw = geo.num_windows[1]
    for wi, (win, maps) in enumerate(zip(windows, per_window)):
        colour = MARK_COLOURS[wi % len(MARK_COLOURS)]
        for step, nmap in enumerate(maps):
            row = 1 + wi * steps + step
            norm = Normalize(0, float(nmap.weights.max()))
            kr, kc = nmap.weights.shape[1:]
            r0, c0 = nmap.origin
            first = (win[0] * nWw + win[1]) * s * s
            for j in range(s * s):
                ax = fig.add_subplot(grid[row, j])
                _image_panel(ax, grey, (r0, r0 + kr), (c0, c0 + kc))
                ax.set_facecolor('#3050a0')  # padding: outside the image
                ax.imshow(nmap.weights[j].numpy(), cmap=CMAP, norm=norm,
                          alpha=.7, interpolation='nearest',
                          extent=(c0 * TOKEN_STRIDE - .5,
                                  (c0 + kc) * TOKEN_STRIDE - .5,
                                  (r0 + kr) * TOKEN_STRIDE - .5,
                                  r0 * TOKEN_STRIDE - .5))
                _box(ax, (win[0] * w, win[0] * w + w),
                     (win[1] * w, win[1] * w + w), colour, '--')
                _box(ax, rows_c[first + j].tolist(),
                     cols_c[first + j].tolist(), 'white', width=1.2)
                other = float(nmap.other[j])
                ax.set_title(f'token ({j // s},{j % s})' +
                             (f'\n{other:.0%} on pooled keys' if other
                              else ''),
                             fontsize=8)
                if j == 0:
                    what = ('one step, pooled +\n'
                            if record.imagenet else f'step {step + 1}, ')
                    ax.set_ylabel(f'W{wi + 1} {tuple(win)}\n{what}'
                                  f'{kr}x{kc} keys', fontsize=8,
                                  color='black')
            cax = fig.add_subplot(grid[row, ncols])
            fig.colorbar(ScalarMappable(norm, CMAP), cax=cax).set_label(
                'weight', fontsize=8)
    fig.suptitle(
        f'{title}\n{s}x{s} semantic tokens per {w}x{w}-token window; heat '
        f'maps: attention weight (mean of {heads} heads). Rows W: each '
        'semantic token (white box: the window part it was pooled from; '
        'dashed: its window) attending to its image-token neighbourhood '
        '(navy: outside the input; black: no weight)', fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=90, bbox_inches='tight')
    plt.close(fig)
    return buffer.getvalue()
