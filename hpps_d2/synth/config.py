"""
World settings: difficulty knobs, dataset sizes at ``scale = 1`` and the seeding scheme.

Every dataset draws its randomness from its own generators, seeded by
``(seed, crc32(dataset name), *keys)`` (:meth:`WorldConfig.rng`), so the size of one dataset never
shifts the randomness of another, and one image's content does not depend on how many images
come before it.
"""

import dataclasses
import zlib
from typing import Dict

import numpy as np

__all__ = ["Knobs", "WorldConfig", "SIZES", "MINIMUM_SIZES"]


def _knob(default: float, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Knobs:
    """Difficulty knobs; each field is also a CLI flag of ``tools/make_synth_data.py`` (``--noise``,
    ``--occlusion``, ...) whose help text is the field's ``metadata["help"]``."""

    noise: float = _knob(1.0, "multiplies every source's sensor-noise std")
    blur: float = _knob(1.0, "multiplies every source's optical and motion blur")
    occlusion: float = _knob(
        0.3,
        "probability that a person gets an object occluder (car, bush, barrier, bin) in front; "
        "person-person occlusion comes from the layout on top of it",
    )
    distractors: float = _knob(
        1.0,
        "multiplies the mean number of person-like distractors per scene (mannequins, poles, "
        "signs, young trees)",
    )
    appearance_jitter: float = _knob(
        0.06,
        "std of the per-instance colour gains of a person (0: an identity always has exactly "
        "the same colours before the camera look)",
    )
    camera_shift: float = _knob(
        1.0,
        "multiplies the spread of per-camera colour transforms around a source's style "
        "(0: all cameras of a source look alike)",
    )
    crowd: float = _knob(1.0, "multiplies the number of people per scene")
    unlabeled: float = _knob(
        0.3, "fraction of the people in PRW/CUHK-SYSU scenes that carry no identity label"
    )


#: Sizes at ``scale = 1``; every count is multiplied by the scale (bounded below by MINIMUM_SIZES).
SIZES: Dict[str, Dict[str, int]] = {
    "crowdhuman": {"train_images": 100, "val_images": 30},
    "ecp": {"train_images": 80, "val_images": 24},
    "msmt17": {"train_ids": 60, "test_ids": 50},
    "cuhk03": {"ids": 100},
    "luperson": {"ids": 300},
    "prw": {
        "train_frames": 200,
        "test_frames": 200,
        "train_ids": 50,
        "test_ids": 50,
        "query_ids": 40,
    },
    "cuhk_sysu": {"train_images": 200, "train_ids": 70, "test_images": 150, "query_ids": 50},
    "posetrack21": {"train_videos": 12, "val_videos": 12, "frames_per_video": 16},
}

#: Lower bounds that keep every format valid (>= 2 elements at every struct level, a TestG50
#: protocol file, several cameras per identity).
MINIMUM_SIZES: Dict[str, Dict[str, int]] = {
    "crowdhuman": {"train_images": 4, "val_images": 2},
    "ecp": {"train_images": 4, "val_images": 2},
    "msmt17": {"train_ids": 4, "test_ids": 4},
    "cuhk03": {"ids": 12},
    "luperson": {"ids": 6},
    "prw": {"train_frames": 12, "test_frames": 12, "train_ids": 4, "test_ids": 4, "query_ids": 3},
    "cuhk_sysu": {"train_images": 12, "train_ids": 4, "test_images": 60, "query_ids": 4},
    "posetrack21": {"train_videos": 2, "val_videos": 2, "frames_per_video": 4},
}


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """
    Attributes:
        seed: world seed.
        scale: multiplies every dataset size (``SIZES``).
        knobs: difficulty knobs.
    """

    seed: int = 0
    scale: float = 1.0
    knobs: Knobs = Knobs()

    def size(self, dataset: str, key: str) -> int:
        """A dataset size at this scale, never below its minimum."""
        n = int(round(SIZES[dataset][key] * self.scale))
        if key == "frames_per_video":  # grow videos in number, not in length
            n = int(round(SIZES[dataset][key] * min(1.0, self.scale)))
        return max(MINIMUM_SIZES[dataset][key], n)

    def rng(self, dataset: str, *keys: int) -> np.random.Generator:
        """A generator private to ``dataset`` and the integer ``keys`` (split, image index, ...)."""
        return np.random.default_rng(
            [self.seed, zlib.crc32(dataset.encode())] + [int(k) for k in keys]
        )

    def to_dict(self) -> dict:
        return {"seed": self.seed, "scale": self.scale, "knobs": dataclasses.asdict(self.knobs)}
