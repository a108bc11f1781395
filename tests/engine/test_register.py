"""tools/train_net.py --register FILE.py: a user's own dataset, registered by a file of theirs."""
import json
import os
import textwrap

from PIL import Image

from tests.engine.conftest import FAST, REPO, run_tool

CFG = os.path.join(REPO, "configs", "synth", "finetune_prw_shufflenet.yaml")

#: A register file in the format of README.md ("A dataset of your own").
REGISTER = '''
import json
import os

from detectron2.structures import BoxMode
from hpps_d2.data.datasets.catalog import SplitSpec, register_split


def load_mine(dataset_dir, split):
    with open(os.path.join(dataset_dir, split + ".json"), encoding="utf-8") as f:
        items = json.load(f)
    return [
        {
            "file_name": os.path.join(dataset_dir, "images", it["image"]),
            "image_id": it["image"],
            "height": it["height"],
            "width": it["width"],
            "annotations": [
                {"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0, "person_id": pid,
                 "iscrowd": 0}
                for box, pid in zip(it["boxes"], it["ids"])
            ],
        }
        for it in items
    ]


register_split(
    SplitSpec(name="mine_train", loader=load_mine, subdir="mine", split="train", task="search",
              role="train", domain="mine", labeled=True),
    root=os.path.dirname(os.path.abspath(__file__)),
)
'''


def _write_dataset(root):
    """Four 160x213 scenes with two labeled persons each, and the register file next to them."""
    os.makedirs(os.path.join(root, "mine", "images"))
    items = []
    for i in range(4):
        img = Image.new("RGB", (213, 160), (90 + 20 * i, 120, 150))
        img.paste((200, 40, 40), (20, 30, 60, 140))
        img.paste((40, 40, 200), (120, 20, 170, 150))
        name = f"s{i}.jpg"
        img.save(os.path.join(root, "mine", "images", name))
        boxes = [[20.0, 30.0, 60.0, 140.0], [120.0, 20.0, 170.0, 150.0]]
        items.append({"image": name, "height": 160, "width": 213, "boxes": boxes, "ids": [0, 1]})
    with open(os.path.join(root, "mine", "train.json"), "w", encoding="utf-8") as f:
        json.dump(items, f)
    path = os.path.join(root, "register_mine.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(REGISTER))
    return path


def _train_args(out):
    """A 2-iteration CPU fine-tuning run on ``mine_train``."""
    return ["--config-file", CFG, *FAST, "SOLVER.MAX_ITER", "2",
            "DATASETS.TRAIN", "('mine_train',)", "DATASETS.TEST", "()", "OUTPUT_DIR", out]


def test_train_net_trains_on_a_registered_dataset_and_logs_hpps_lines(tmp_path):
    reg = _write_dataset(str(tmp_path))
    out = str(tmp_path / "out")
    res = run_tool(["tools/train_net.py", "--register", reg, *_train_args(out)], str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.path.exists(os.path.join(out, "model_final.pth"))
    # the project's own INFO lines reach OUTPUT_DIR/log.txt (and the console)
    with open(os.path.join(out, "log.txt"), encoding="utf-8") as f:
        log = f.read()
    assert "OIM lookup table: 2 identities counted from ['mine_train']" in log
    assert "OIM lookup table: 2 identities" in res.stdout + res.stderr


def test_missing_register_file_is_named(tmp_path):
    missing = str(tmp_path / "nope.py")
    args = ["tools/train_net.py", "--register", missing, "--config-file", CFG]
    res = run_tool(args, str(tmp_path), timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"train_net.py: error: --register {missing}: no such file (expected a Python file that "
        "registers datasets, see README.md, 'A dataset of your own')"
    )
    assert "Traceback" not in res.stderr


def test_failing_register_file_is_named(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import os\nraise RuntimeError('my dataset root is not set')\n")
    args = ["tools/train_net.py", "--register", str(bad), "--config-file", CFG]
    res = run_tool(args, str(tmp_path), timeout=120)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert lines[0] == (
        f"train_net.py: error: --register {bad}: the file raised RuntimeError while it ran:"
    )
    assert lines[1] == f'  File "{bad}", line 2, in <module>'  # the user's lines, not importlib's
    assert lines[-1] == "RuntimeError: my dataset root is not set"
    assert "importlib" not in res.stderr


def test_register_file_with_a_syntax_error_or_not_python_is_named(tmp_path):
    bad = tmp_path / "syntax.py"
    bad.write_text("def f(:\n")
    txt = tmp_path / "datasets.txt"
    txt.write_text("x = 1\n")
    args = ["tools/train_net.py", "--register", str(txt), "--register", str(bad)]
    args += ["--config-file", CFG]
    res = run_tool(args, str(tmp_path), timeout=120)
    assert res.returncode == 1
    expected = f"train_net.py: error: --register {txt}: expected a Python file ending in .py"
    assert res.stderr.strip() == expected
    args = ["tools/train_net.py", "--register", str(bad), "--config-file", CFG]
    res = run_tool(args, str(tmp_path), timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"train_net.py: error: --register {bad}: the file raised SyntaxError while it ran:",
        "SyntaxError: invalid syntax (syntax.py, line 1)",
    ]


def test_register_file_runs_in_every_spawned_process(tmp_path):
    reg = _write_dataset(str(tmp_path))
    out = str(tmp_path / "out2")
    args = ["tools/train_net.py", "--num-gpus", "2", "--register", reg, *_train_args(out)]
    res = run_tool(args, str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.path.exists(os.path.join(out, "model_final.pth"))
    # rank 1 logs to its own file, through the same logger setup
    with open(os.path.join(out, "log.txt.rank1"), encoding="utf-8") as f:
        assert "OIM lookup table: 2 identities" in f.read()
