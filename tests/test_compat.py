import pytest
from PIL import Image

import hpps_d2  # noqa: F401
from hpps_d2 import compat


def test_pillow_linear_alias():
    assert Image.LINEAR == Image.BILINEAR
    import detectron2.data.transforms  # noqa: F401  (uses Image.LINEAR as a default argument)


@pytest.mark.skipif(compat.has_compiled_ops(), reason="official detectron2 build with compiled ops")
def test_missing_compiled_op_names_the_op():
    import detectron2.layers  # noqa: F401  (imports detectron2._C at import time)
    from detectron2 import _C

    with pytest.raises(compat.MissingCompiledOpError, match=r"'_C.deform_conv_forward'.*build official detectron2"):
        _C.deform_conv_forward
    import torch
    from detectron2.layers.rotated_boxes import pairwise_iou_rotated

    boxes = torch.tensor([[5.0, 5.0, 4.0, 2.0, 30.0]])
    with pytest.raises(compat.MissingCompiledOpError, match="'_C.box_iou_rotated'"):
        pairwise_iou_rotated(boxes, boxes)


def test_apply_is_idempotent():
    compat.apply()
    compat.apply()
    import sys

    assert "detectron2._C" in sys.modules


@pytest.mark.skipif(compat.has_compiled_ops(), reason="official detectron2 build with compiled ops")
def test_collect_env_reports_missing_ops():
    from detectron2.utils.collect_env import collect_env_info

    assert "installed without compiled ops" in collect_env_info()


def test_torch_jit_deprecation_is_silenced_at_its_source_only():
    """fvcore.nn scripts its focal losses with torch.jit.script at import, which torch >= 2.9 warns
    about in every process (each data-loader worker and DDP rank). Importing the stack through
    hpps_d2 prints it no more; a torch.jit.script call of the user's own still warns."""
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('default')\n"
        "import hpps_d2, detectron2.modeling, detectron2.layers\n"
        "import torch\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    torch.jit.script(torch.nn.Identity())\n"
        "    print('USER_WARNINGS', sum('torch.jit.script' in str(m.message) for m in w))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch.jit.script` is deprecated" not in out.stderr, out.stderr[-2000:]
    assert "USER_WARNINGS 1" in out.stdout, out.stdout  # the user's own call still warns
