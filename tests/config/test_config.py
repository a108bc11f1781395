import glob
import os
import re

from detectron2.config import get_cfg

import hpps_d2.config.defaults as defaults
from hpps_d2.config import add_hpps_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_key_has_a_comment():
    """House style: every key added by add_hpps_config has a comment above it."""
    lines = open(defaults.__file__).read().splitlines()
    missing = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*_C\.(HPPS(\.\w+)+) = (?!CN\(\))", line)
        if m:
            j = i - 1
            while j >= 0 and re.match(r"\s*_C\.HPPS(\.\w+)+ = (?!CN\(\))", lines[j]):
                j -= 1  # a group of related keys may share one comment
            if not lines[j].strip().startswith("#"):
                missing.append(m.group(1))
    assert not missing, f"keys without a comment: {missing}"


def test_add_hpps_config_keys():
    cfg = add_hpps_config(get_cfg())
    assert cfg.HPPS.UNIFY.REID_CANVAS == "expand_resize"
    assert cfg.HPPS.VIEWS.NUM == 2


def test_every_yaml_under_configs_loads():
    files = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))
    for f in files:
        cfg = add_hpps_config(get_cfg())
        cfg.set_new_allowed(False)
        cfg.merge_from_file(f)
