"""The checks of tools/analysis/device_check.py
(:mod:`stvit_mm.analysis.device_check`), run CPU against CPU: the CUDA
comparison without a GPU."""
import json
import subprocess
import sys

import torch


# ---------------------------------------------------------------------------
# device_check.py
# ---------------------------------------------------------------------------
DEVICE_CHECK_RUN = """
import sys
sys.modules['mmcv._ext'] = None  # as without mmcv's compiled ops
from stvit_mm.analysis import check_config
results = check_config(**{kwargs!r})
rc = 0 if results['passed'] else 1  # the tool's exit status
print('RC', rc, 'mmdet.models', 'mmdet.models' in sys.modules)
"""


def test_device_check_cpu_against_cpu(tmp_path):
    """The GPU correctness check, run CPU against CPU on a shrunk
    STViT-R-Swin-S config; in a fresh process, to see that it needs
    neither mmcv's compiled ops nor mmdet.models."""
    out = tmp_path / 'check.json'
    kwargs = dict(
        config='configs/cascade_stvit_r_swin_s_3x.py', device='cpu',
        threads=1, override='{"embed_dims": 16, "num_heads": [1, 2, 4, 8], '
        '"depths": [2, 2, 6, 2]}', sizes=[(64, 96), (40, 40)],
        dtypes=['bf16'], train_dtypes=['bf16', 'fp16'], train_size=(64, 64),
        train_steps=2, out=str(out))
    code = DEVICE_CHECK_RUN.format(kwargs=kwargs)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == 'RC 0 mmdet.models False'
    assert 'ALL PASSED' in proc.stdout
    results = json.loads(out.read_text())
    rows = results['outputs']
    # 2 pad-mask modes x 2 sizes x (fp32, fp32 autograd, bf16)
    assert len(rows) == 12 and all(r['passed'] for r in rows)
    assert {r['label'] for r in rows} == {'official', 'exact'}
    for r in rows:
        assert len(r['errors']) == 4
        if r['precision'].startswith('fp32'):
            assert r['error'] < 1e-6  # the same device: same arithmetic
        else:
            assert 0 < r['error'] < r['bound']  # bf16 really ran
    assert [r['precision'] for r in results['train']] == ['bf16', 'fp16']
    for r in results['train']:
        assert r['with_grad'] == r['params'] > 100
        assert r['nonfinite_grad'] == 0 and r['params_finite']
    assert results['setting']['embed_dims'] == 16


def test_device_check_catches_a_wrong_device_output():
    from stvit_mm.analysis import device_check, device_report
    from stvit_mm.models import STViTRSwin
    torch.manual_seed(0)
    model = STViTRSwin(embed_dims=16, num_heads=(1, 2, 4, 8))
    model.init_weights()
    device_check.perturb_weights(model, 0.5)
    assert all(p.eq(0.5).all() for n, p in model.named_parameters()
               if 'gamma' in n)
    # bf16 against fp32 with an impossible bound: the row must fail.
    rows = device_check.compare_outputs(model, 'cpu', sizes=[(32, 48)],
                                        batch=1, dtypes=['bf16'],
                                        low_bound=1e-9)
    assert [r['passed'] for r in rows] == [True, True, False]
    report = device_report.markdown_report(dict(
        setting=dict(device='cpu', ref_device='cpu', torch='x',
                     embed_dims=16, depths=[2], layer_scale=0.5),
        outputs=rows, train=[], passed=False))
    assert 'FAIL' in report and 'SOME CHECKS FAILED' in report
