"""
Tiny datasets in their real on-disk formats, with the image damage ``check_datasets --decode``
must find: a zero-byte crop, a truncated JPEG, a folder named like an image, an image whose size
differs from its annotation.
"""
import json
import os

from tests.helpers import write_image

#: MSMT17 train list lines (V1 layout): ``name -> line``.
MSMT17_TRAIN = {
    "good": "0001/0001_000_01_0303morning_0001_0.jpg 1",
    "zero_byte": "0001/0001_000_01_0303morning_0002_0.jpg 1",
    "truncated": "0002/0002_000_02_0303morning_0001_0.jpg 2",
    "folder": "0002/0002_000_02_0303morning_0002_0.jpg 2",
}
MSMT17_TEST = [
    "0003/0003_000_02_0303morning_0001_0.jpg 3",
    "0004/0004_004_11_0303noon_0002_0.jpg 4",
]


def write_truncated_jpeg(path: str, height: int = 64, width: int = 48) -> str:
    """A JPEG cut to half its bytes: the header reads, the pixels do not."""
    write_image(path, height, width, fmt="JPEG")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    return path


def msmt17_crop_path(root, line: str, split: str = "train") -> str:
    """The file of one list line under ``<root>/msmt17/MSMT17_V1``."""
    folder = "train" if split == "train" else "test"
    return os.path.join(str(root), "msmt17", "MSMT17_V1", folder, line.split()[0])


def write_msmt17(root, damaged: bool = True) -> dict:
    """
    ``<root>/msmt17/MSMT17_V1`` with list files; with ``damaged`` the train list holds the four
    crops of :data:`MSMT17_TRAIN`, else only the good one.

    Returns:
        dict: name of :data:`MSMT17_TRAIN` -> crop path written.
    """
    version = os.path.join(str(root), "msmt17", "MSMT17_V1")
    train = MSMT17_TRAIN if damaged else {"good": MSMT17_TRAIN["good"]}
    paths = {name: msmt17_crop_path(root, line) for name, line in train.items()}
    for name, path in paths.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if name == "good":
            write_image(path, 16, 8, fmt="JPEG")
        elif name == "zero_byte":
            open(path, "wb").close()
        elif name == "truncated":
            write_truncated_jpeg(path)
        elif name == "folder":
            os.makedirs(path)
    for line in MSMT17_TEST:
        write_image(msmt17_crop_path(root, line, "test"), 16, 8, fmt="JPEG")
    lists = {"train": list(train.values()), "query": MSMT17_TEST[:1], "gallery": MSMT17_TEST[1:]}
    for split, lines in lists.items():
        with open(os.path.join(version, f"list_{split}.txt"), "w") as f:
            f.write("".join(line + "\n" for line in lists[split]))
    return paths


def write_ecp(root, mis_sized: bool = True) -> dict:
    """
    ``<root>/ECP/day`` train split: frame ``berlin_00000`` (label 20x10, image 20x10) and, with
    ``mis_sized``, ``berlin_00001`` whose label says 200x100 for a 20x10 image.

    Returns:
        dict: image id -> image path.
    """
    day = os.path.join(str(root), "ECP", "day")
    frames = {"berlin_00000": (20, 10)}
    if mis_sized:
        frames["berlin_00001"] = (200, 100)
    paths = {}
    for stem, (label_w, label_h) in frames.items():
        label = os.path.join(day, "labels", "train", "berlin", stem + ".json")
        os.makedirs(os.path.dirname(label), exist_ok=True)
        child = {"identity": "pedestrian", "x0": 1, "y0": 1, "x1": 5, "y1": 9, "tags": []}
        frame = {"identity": "frame", "imagewidth": label_w, "imageheight": label_h}
        with open(label, "w") as f:
            json.dump({**frame, "children": [child]}, f)
        image = os.path.join(day, "img", "train", "berlin", stem + ".png")
        paths[stem] = write_image(image, 10, 20)
    return paths


def write_crowdhuman(root, empty_val: bool = False) -> dict:
    """
    ``<root>/CrowdHuman`` with ``annotation_train.odgt`` over one 30x40 image ``upright``; with
    ``empty_val``, ``annotation_val.odgt`` exists and is empty.

    Returns:
        dict: image id -> image path.
    """
    ch = os.path.join(str(root), "CrowdHuman")
    paths = {"upright": write_image(os.path.join(ch, "Images", "upright.jpg"), 30, 40, fmt="JPEG")}
    with open(os.path.join(ch, "annotation_train.odgt"), "w") as f:
        for image_id in paths:
            box = {"tag": "person", "fbox": [2, 2, 10, 20], "extra": {}}
            f.write(json.dumps({"ID": image_id, "gtboxes": [box]}) + "\n")
    if empty_val:
        open(os.path.join(ch, "annotation_val.odgt"), "w").close()
    return paths
