"""tools/analysis/vis_semantic_tokens.py: the attention weights it draws are
the ones the model computes, and the tool draws or refuses cleanly."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from helpers.paths import REPO
from helpers.tools import run_tool
from stvit_mm.analysis.token_maps import (generation_maps, generation_weights,
                                          record_unit, recovery_weights)
from stvit_mm.analysis.vis_tokens import vis_semantic_tokens
from stvit_mm.errors import exit_on_error
from stvit_mm.models import STViTRSwin
from stvit_mm.models.layers import geometry, neighbourhood_attention

TOOL = osp.join(REPO, 'tools', 'analysis', 'vis_semantic_tokens.py')
DET = 'configs/quickstart/stvit_r_swin_quickstart_coco.py'
SEG = 'configs/quickstart/stvit_r_swin_quickstart_ade.py'
CLS = 'configs/quickstart/stvit_r_swin_quickstart_in1k.py'
SWIN = 'configs/quickstart/swin_quickstart_coco.py'


def tiny_backbone(variant='detection', pad_mask='official', depth=6):
    torch.manual_seed(0)
    model = STViTRSwin(embed_dims=16, depths=(2, 2, depth, 2),
                       num_heads=(1, 2, 4, 8), variant=variant,
                       pad_mask=pad_mask, layer_scale_init_value=0.5)
    model.init_weights()
    return model.eval()


def recorded(model, size, unit=0):
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with record_unit(model, unit) as record, torch.no_grad():
        model(x)
    return record


def attended(block, weights, values):
    """The attention branch recomputed from per-head weights:
    (B, G, heads, Nq, K) x (B, G, heads, K, d) -> (B, G, Nq, C)."""
    out = weights @ values
    B, G, h, N, d = out.shape
    return block.attn.project_out(out.transpose(2, 3).reshape(B, G, N, h * d))


def check_generation(record):
    for step, args in enumerate(record.generation):
        block = record.unit.generate[step]
        weights, values = generation_weights(record, step)
        assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5)
        with torch.no_grad():
            expected = block(*args)
            branch = attended(block, weights, values)
            if record.imagenet:
                from stvit_mm.models.layers.token_attention import \
                    _scaled_residual
                x = block.gamma1(branch)
                got = _scaled_residual(x, block.ffn.layers(block.norm2(x)),
                                       block.ffn.gamma2,
                                       block.ffn.dropout_layer)
            else:
                semantic = args[1]
                if semantic is None:
                    from stvit_mm.models.layers.semantic import \
                        max_pool_windows
                    semantic = max_pool_windows(
                        args[0], block.window_size,
                        args[2].sample_window_size, block.pool_pad_value)
                got = block.residual(semantic, branch)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def check_recovery(record, queries):
    block = record.unit.recovery_block
    weights, values = recovery_weights(record, queries)
    assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5)
    rows = torch.tensor([r for r, _ in queries])
    cols = torch.tensor([c for _, c in queries])
    with torch.no_grad():
        full = block(*record.recovery)
        if record.imagenet:
            H, W = record.image.shape[1:3]
            full = full.reshape(1, H, W, -1)
        expected = full[:, rows, cols]
        branch = attended(block, weights[:, None], values[:, None])[:, 0]
        got = block.residual(record.image[:, rows, cols], branch)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('pad_mask', ['official', 'exact'])
def test_detection_weights_are_what_the_blocks_compute(pad_mask):
    # 200x232: a 13x15 stage-3 map, padded to 2x3 windows.
    record = recorded(tiny_backbone(pad_mask=pad_mask), (200, 232))
    assert len(record.generation) == 2
    check_generation(record)
    check_recovery(record, [(0, 0), (6, 8), (12, 14)])
    maps = generation_maps(record, (1, 2))
    assert [tuple(m.weights.shape) for m in maps] == [(9, 14, 14),
                                                      (9, 21, 21)]
    assert maps[0].origin == (7 - 3, 14 - 3)  # centred, floor before


def test_gathered_recovery_weights_match(monkeypatch):
    # The gathered recovery (large maps) sums the weights of repeated keys.
    monkeypatch.setattr(neighbourhood_attention, 'DENSE_RECOVERY_MAX_RATIO',
                        0.)
    geometry._stage_geometry_cpu.cache_clear()
    geometry.stage_geometry.cache_clear()
    try:
        record = recorded(tiny_backbone(pad_mask='exact'), (200, 232))
        assert not record.geometry.recovery_dense
        check_recovery(record, [(0, 0), (6, 8), (12, 14)])
    finally:
        geometry._stage_geometry_cpu.cache_clear()
        geometry.stage_geometry.cache_clear()


def test_classifier_weights_are_what_the_blocks_compute():
    record = recorded(tiny_backbone('imagenet', depth=12), (224, 224),
                      unit=1)
    assert record.imagenet and len(record.generation) == 1
    check_generation(record)
    check_recovery(record, [(0, 0), (7, 3)])
    (nmap, ) = generation_maps(record, (1, 0))
    assert tuple(nmap.weights.shape) == (9, 10, 10)
    assert nmap.origin == (4, 0)  # the release's unfold: starts 0 and 4
    total = nmap.weights.sum((1, 2)) + nmap.other
    assert torch.allclose(total, torch.ones(()), atol=1e-5)


@pytest.fixture(scope='module')
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp('img') / 'shapes.png'
    picture = np.full((256, 256, 3), 40, np.uint8)
    cv2.circle(picture, (90, 100), 40, (40, 40, 230), -1)
    cv2.rectangle(picture, (150, 150), (220, 230), (40, 230, 150), -1)
    cv2.imwrite(str(path), picture)
    return path


def test_tool_draws_a_detector_with_random_weights(image, tmp_path):
    out = tmp_path / 'tokens.png'
    text = run_tool(TOOL, DET, image, '--out', out, '--windows', '1,1',
                    '0,0')
    assert str(out) in text and 'windows 1,1, 0,0' in text
    picture = cv2.imread(str(out))
    assert picture is not None and min(picture.shape[:2]) > 800


@pytest.mark.parametrize('config', [SEG, CLS])
def test_segmentor_and_classifier_draw_with_a_checkpoint(config, image,
                                                         tmp_path):
    from stvit_mm.analysis.models import build_model
    from stvit_mm.apis import load_config
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': build_model(load_config(config)).state_dict()},
               ckpt)
    out = tmp_path / 'tokens.png'
    text = vis_semantic_tokens(config, str(ckpt), str(image), str(out))
    assert 'unit 0' in text
    assert cv2.imread(str(out)) is not None


def refusal(tmp_path, *args, **kwargs):
    with pytest.raises(SystemExit) as excinfo, \
            exit_on_error('vis_semantic_tokens.py'):
        vis_semantic_tokens(*[str(a) if a else a for a in args], **kwargs)
    message = str(excinfo.value.code)
    assert message.startswith('vis_semantic_tokens.py: error: ')
    assert '\n' not in message
    return message


def test_refusals_write_nothing(image, tmp_path):
    out = tmp_path / 'tokens.png'
    out.write_bytes(b'mine')
    assert 'exists; pass --force' in refusal(tmp_path, DET, None, image, out)
    assert out.read_bytes() == b'mine'
    fresh = tmp_path / 'new.png'
    assert 'no STViTRSwin' in refusal(tmp_path, SWIN, None, image, fresh)
    text = tmp_path / 'notes.png'
    text.write_text('not an image')
    assert 'cannot read image' in refusal(tmp_path, DET, None, text, fresh)
    wrong = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'backbone.foo': torch.zeros(2)}}, wrong)
    assert 'backbone.foo' in refusal(tmp_path, DET, wrong, image, fresh)
    assert '--unit 1' in refusal(tmp_path, DET, None, image, fresh, unit=1)
    assert '--windows 5,0' in refusal(tmp_path, DET, None, image, fresh,
                                      windows=[(5, 0)])
    assert not fresh.exists()
