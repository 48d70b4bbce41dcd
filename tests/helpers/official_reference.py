"""A deliberately naive, functional re-statement of the released STViT-R-Swin
forward pass, used only as a test oracle.

It follows the released algorithm step by step, including its costs and
quirks: keys are unfolded into per-window copies and normed/projected once
per copy, masks are additive floats with -1000 written through the
``[:, -pad_b:, -pad_r:]`` slice, windows are zero-padded before max pooling.
It reads an official-layout state dict directly (no conversion), so checking
it against the golden fixture validates the oracle, and checking the package
against the oracle validates the package on any input size.
"""
import math

import torch
import torch.nn.functional as F

EPS = 1e-5


def _ln(x, sd, p):
    return F.layer_norm(x, (x.shape[-1], ), sd[p + '.weight'],
                        sd[p + '.bias'], EPS)


def _lin(x, sd, p):
    return F.linear(x, sd[p + '.weight'], sd.get(p + '.bias'))


def _mlp(x, sd, p):
    return _lin(F.gelu(_lin(x, sd, p + '.fc1')), sd, p + '.fc2')


def _attend(q_in, kv_in, sd, p, heads, mask=None):
    """Released ``Attention``: separate q / kv, scale after the product."""
    B, N1, C = q_in.shape
    N2 = kv_in.shape[1]
    q = _lin(q_in, sd, p + '.q').reshape(B, N1, heads, -1).transpose(1, 2)
    kv = _lin(kv_in, sd, p + '.kv').reshape(B, N2, 2, heads,
                                            -1).permute(2, 0, 3, 1, 4)
    attn = (q @ kv[0].transpose(-2, -1)) * (C // heads)**-0.5
    if mask is not None:
        attn = attn + mask
    out = (attn.softmax(-1) @ kv[1]).transpose(1, 2).reshape(B, N1, C)
    return _lin(out, sd, p + '.proj')


def _stem(x, sd):
    H, W = x.shape[-2:]
    x = F.pad(x, (0, (4 - W % 4) % 4, 0, (4 - H % 4) % 4))
    for i in (0, 2):
        p = f'patch_embed.proj.{i}'
        x = F.conv2d(x, sd[p + '.c.weight'], stride=2, padding=1)
        x = F.batch_norm(x, sd[p + '.bn.running_mean'],
                         sd[p + '.bn.running_var'], sd[p + '.bn.weight'],
                         sd[p + '.bn.bias'], False, 0., EPS)
        x = F.hardswish(x)
    return x.permute(0, 2, 3, 1)


def _windows(x, w):
    B, H, W, C = x.shape
    x = x.reshape(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, C)


def _unwindows(x, w, B, H, W):
    C = x.shape[-1]
    x = x.reshape(B, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H, W, C)


def _swin_block(x, sd, p, heads, w, shift):
    B, H, W, C = x.shape
    y = _ln(x, sd, p + '.norm1')
    pad_b, pad_r = (w - H % w) % w, (w - W % w) % w
    y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
    Hp, Wp = H + pad_b, W + pad_r
    mask = None
    if shift:
        s = w // 2
        y = torch.roll(y, (-s, -s), (1, 2))
        img = torch.zeros(1, Hp, Wp, 1)
        cnt = 0
        for hs in (slice(0, -w), slice(-w, -s), slice(-s, None)):
            for ws in (slice(0, -w), slice(-w, -s), slice(-s, None)):
                img[:, hs, ws, :] = cnt
                cnt += 1
        mw = _windows(img, w).squeeze(-1)
        mask = mw[:, None, :] - mw[:, :, None]
        mask = mask.masked_fill(mask != 0, -100.).masked_fill(mask == 0, 0.)
    win = _windows(y, w)
    nB, N, _ = win.shape
    qkv = _lin(win, sd, p + '.attn.qkv').reshape(nB, N, 3, heads,
                                                 -1).permute(2, 0, 3, 1, 4)
    q = qkv[0] * (C // heads)**-0.5
    attn = q @ qkv[1].transpose(-2, -1)
    table = sd[p + '.attn.relative_position_bias_table']
    index = sd[p + '.attn.relative_position_index']
    attn = attn + table[index.reshape(-1)].reshape(N, N, -1).permute(2, 0, 1)
    if mask is not None:
        nW = mask.shape[0]
        attn = (attn.reshape(-1, nW, heads, N, N) + mask[None, :, None])
        attn = attn.reshape(-1, heads, N, N)
    out = (attn.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(nB, N, C)
    out = _unwindows(_lin(out, sd, p + '.attn.proj'), w, B, Hp, Wp)
    if shift:
        out = torch.roll(out, (w // 2, w // 2), (1, 2))
    x = x + out[:, :H, :W]
    return x + _mlp(_ln(x, sd, p + '.norm2'), sd, p + '.mlp')


def _merge(x, sd, p):
    H, W = x.shape[1:3]
    x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
                   x[:, 1::2, 1::2]], -1)
    return F.linear(_ln(x, sd, p + '.norm'), sd[p + '.reduction.weight'])


def _pad_mask(B, rows, cols, pad_b, pad_r, left, right, k, stride, n_q):
    m = torch.zeros(B, rows, cols)
    m[:, -pad_b:, -pad_r:] = -1000
    m = F.pad(m, (left, right, left, right), value=-1000)
    m = F.unfold(m[:, None], k, stride=stride).reshape(B, k, k, -1)
    m = m.permute(0, 3, 1, 2).reshape(-1, 1, k * k)
    return m.expand(-1, n_q, -1)[:, None]


def _semantic_step(x, y, sd, p, heads, w, s, k):
    B, H, W, C = x.shape
    pad_b, pad_r = (w - H % w) % w, (w - W % w) % w
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    Hp, Wp = x.shape[1:3]
    nWh, nWw = Hp // w, Wp // w
    if y is None:
        win = _windows(x, w).reshape(-1, w, w, C).permute(0, 3, 1, 2)
        shortcut = F.adaptive_max_pool2d(win, s).reshape(-1, C, s * s)
        shortcut = shortcut.transpose(1, 2)
    else:
        shortcut = y.reshape(B, nWh, s, nWw, s, C).permute(0, 1, 3, 2, 4, 5)
        shortcut = shortcut.reshape(-1, s * s, C)
    q_in = _ln(shortcut, sd, p + '.norm1')
    left, right = math.floor((k - w) / 2), math.ceil((k - w) / 2)
    xx = F.pad(x, (0, 0, left, right, left, right))
    mask = _pad_mask(B, Hp, Wp, pad_b, pad_r, left, right, k, w, s * s)
    kw = F.unfold(xx.permute(0, 3, 1, 2), k, stride=w).reshape(B, C, k, k, -1)
    kw = kw.permute(0, 4, 2, 3, 1).reshape(-1, k * k, C)
    kw = _ln(kw, sd, p + '.norm1')
    out = shortcut + sd[p + '.layer_scale_1'] * _attend(
        q_in, kw, sd, p + '.attn', heads, mask)
    out = out.reshape(B, nWh, nWw, s, s, C).permute(0, 1, 3, 2, 4, 5)
    out = out.reshape(B, -1, C)
    return out + sd[p + '.layer_scale_2'] * _mlp(
        _ln(out, sd, p + '.norm2'), sd, p + '.mlp')


def _semantic_block(y, sd, p, heads, grid, s, local):
    B, L, C = y.shape
    t = _ln(y, sd, p + '.norm1')
    if local:
        Hs, Ws = grid
        t = t.reshape(B, Hs // s, s, Ws // s, s, C).permute(0, 1, 3, 2, 4, 5)
        t = t.reshape(-1, s * s, C)
        a = _attend(t, t, sd, p + '.attn', heads)
        a = a.reshape(B, Hs // s, Ws // s, s, s, C).permute(0, 1, 3, 2, 4, 5)
        a = a.reshape(B, L, C)
    else:
        a = _attend(t, t, sd, p + '.attn', heads)
    y = y + sd[p + '.layer_scale_1'] * a
    return y + sd[p + '.layer_scale_2'] * _mlp(
        _ln(y, sd, p + '.norm2'), sd, p + '.mlp')


def _recovery(x, y, sd, p, heads, w, s, k):
    B, H, W, C = x.shape
    pad_b, pad_r = (w - H % w) % w, (w - W % w) % w
    xp = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    Hp, Wp = xp.shape[1:3]
    shortcut = _windows(xp, w)
    q_in = _ln(shortcut, sd, p + '.norm1')
    Hs, Ws = Hp // w * s, Wp // w * s
    grid = y.reshape(B, Hs, Ws, C)
    left, right = math.floor((k - s) / 2), math.ceil((k - s) / 2)
    mask = _pad_mask(B, Hs, Ws, pad_b, pad_r, left, right, k, s, w * w)
    grid = F.pad(grid, (0, 0, left, right, left, right))
    kw = F.unfold(grid.permute(0, 3, 1, 2), k, stride=s)
    kw = kw.reshape(B, C, k, k, -1)
    kw = _ln(kw.permute(0, 4, 2, 3, 1).reshape(-1, k * k, C), sd,
             p + '.norm1')
    out = shortcut + sd[p + '.layer_scale_1'] * _attend(
        q_in, kw, sd, p + '.attn', heads, mask)
    out = _unwindows(out, w, B, Hp, Wp)[:, :H, :W]
    return out + sd[p + '.layer_scale_2'] * _mlp(
        _ln(out, sd, p + '.norm2'), sd, p + '.mlp')


def _sparsified_stage(x, sd, depth, heads, cfg):
    w, s = cfg['window_size'], cfg['window_sample_size']
    k1, k2, kr = (cfg['k_window_size_1'], cfg['k_window_size_2'],
                  cfg['restore_k_window_size'])
    H, W = x.shape[1:3]
    grid = (math.ceil(H / w) * s, math.ceil(W / w) * s)
    for u in range(depth // 6):
        p = lambda j: f'layers.2.blocks.{6 * u + j}'  # noqa: E731
        x = _swin_block(x, sd, p(0), heads, w, shift=False)
        y = _semantic_step(x, None, sd, p(1), heads, w, s, k1)
        y = _semantic_step(x, y, sd, p(2), heads, w, s, k2)
        y = _semantic_block(y, sd, p(3), heads, grid, s, local=True)
        y = _semantic_block(y, sd, p(4), heads, grid, s, local=False)
        x = _recovery(x, y, sd, p(5), heads, w, s, kr)
    return x


@torch.no_grad()
def official_forward(sd, cfg, img):
    """Outputs of the released backbone (eval mode) for images ``img``.

    Args:
        sd (dict): Official-layout backbone state dict.
        cfg (dict): The fixture's config (official argument names).
        img (Tensor): (B, 3, H, W).

    Returns:
        tuple[Tensor]: The four (B, C_i, H_i, W_i) normed stage outputs.
    """
    x = _stem(img, sd)
    outs = []
    for i, (depth, heads) in enumerate(zip(cfg['depths'], cfg['num_heads'])):
        if i == 2:
            x = _sparsified_stage(x, sd, depth, heads, cfg)
        else:
            for j in range(depth):
                x = _swin_block(x, sd, f'layers.{i}.blocks.{j}', heads,
                                cfg['window_size'], shift=j % 2 == 1)
        outs.append(_ln(x, sd, f'norm{i}').permute(0, 3, 1, 2).contiguous())
        if i < 3:
            x = _merge(x, sd, f'layers.{i}.downsample')
    return tuple(outs)
