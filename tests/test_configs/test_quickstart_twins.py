"""The quickstarts' Swin twins (configs/quickstart/swin_quickstart_*.py, for
``make compare``): the STViT-R quickstart's recipe with only the backbone
replaced by a Swin of the same size."""
import pytest

from helpers.paths import QUICKSTART_DET, QUICKSTART_SEG
from stvit_mm.apis import load_config

TWINS = [(QUICKSTART_DET, 'configs/quickstart/swin_quickstart_coco.py'),
         (QUICKSTART_SEG, 'configs/quickstart/swin_quickstart_ade.py')]
SAME = ('embed_dims', 'depths', 'num_heads', 'window_size', 'mlp_ratio',
        'qkv_bias', 'drop_rate', 'attn_drop_rate', 'drop_path_rate',
        'out_indices', 'init_cfg')


@pytest.mark.parametrize('stvit_path,swin_path', TWINS)
def test_twin_replaces_only_the_backbone(stvit_path, swin_path):
    stvit, swin = load_config(stvit_path), load_config(swin_path)
    assert stvit.model.backbone.type == 'STViTRSwin'
    assert swin.model.backbone.type == 'SwinTransformer'
    for key in SAME:
        assert swin.model.backbone[key] == stvit.model.backbone[key], key
    recipes = []
    for cfg in (stvit, swin):
        recipe = cfg.to_dict()
        recipe['model'].pop('backbone')
        recipes.append(recipe)
    assert recipes[0] == recipes[1]
