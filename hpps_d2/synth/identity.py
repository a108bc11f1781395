"""
Identities of the synthetic world: a person is a COMBINATION of independent attributes.

An identity is one point of the mixed-radix space spanned by :data:`ATTRIBUTES` (upper colour x
upper pattern x lower colour x lower type x hair colour x skin tone x accessory x body shape, about
460k combinations). No single attribute identifies a person: every value is shared by thousands of
identities, and two identities never share all of them.

Identities are dealt out by :class:`IdentityBank`: one seeded permutation of the whole space is cut
into interleaved pools, one per source dataset (``perm[k], perm[k + P], perm[k + 2P], ...`` for pool
``k`` of ``P``). Pools are therefore disjoint by construction, and the i-th identity of a pool does
not depend on how many identities any other pool uses.
"""

import dataclasses
from typing import Dict, List, Tuple

import numpy as np

__all__ = [
    "ATTRIBUTES",
    "POOLS",
    "PRETRAIN_POOLS",
    "SEARCH_POOLS",
    "Appearance",
    "BodyShape",
    "Identity",
    "IdentityBank",
    "mannequin_appearance",
]

# BGR colours.
UPPER_COLOURS = {
    "red": (40, 40, 200),
    "orange": (30, 120, 235),
    "yellow": (40, 205, 230),
    "green": (60, 170, 60),
    "dark_green": (40, 85, 30),
    "teal": (150, 140, 20),
    "sky_blue": (230, 170, 90),
    "royal_blue": (170, 60, 30),
    "purple": (130, 40, 110),
    "pink": (180, 120, 235),
    "white": (225, 225, 225),
    "black": (35, 35, 35),
}
LOWER_COLOURS = {
    "black": (30, 30, 30),
    "navy": (85, 40, 25),
    "denim": (150, 105, 60),
    "khaki": (120, 170, 195),
    "grey": (125, 125, 125),
    "brown": (35, 65, 110),
    "white": (220, 220, 220),
    "olive": (45, 110, 100),
}
HAIR_COLOURS = {
    "black": (25, 25, 25),
    "dark_brown": (30, 45, 70),
    "blond": (110, 185, 215),
    "grey": (165, 165, 165),
    "auburn": (35, 60, 150),
}
SKIN_TONES = {
    "light": (180, 200, 235),
    "medium_light": (140, 170, 210),
    "medium": (95, 130, 175),
    "dark": (50, 70, 105),
}
ACCESSORY_COLOURS = ((40, 40, 40), (30, 30, 140), (120, 70, 20), (60, 120, 60), (90, 90, 90))


@dataclasses.dataclass(frozen=True)
class BodyShape:
    """Body proportions as fractions of the standing height H.

    Attributes:
        shoulder: half shoulder width.
        hip: half hip width.
        hip_y: height of the hips below the top of the head.
        head_r: head radius.
        thick: limb thickness factor.
        stature: relative standing height (scales H in scenes).
    """

    shoulder: float
    hip: float
    hip_y: float
    head_r: float
    thick: float
    stature: float


BODY_SHAPES = {
    "average": BodyShape(0.115, 0.085, 0.52, 0.062, 1.0, 1.0),
    "slim_tall": BodyShape(0.098, 0.074, 0.50, 0.057, 0.82, 1.07),
    "broad": BodyShape(0.142, 0.104, 0.53, 0.064, 1.28, 1.0),
    "short": BodyShape(0.122, 0.092, 0.565, 0.075, 1.1, 0.82),
}

#: Attribute name -> tuple of value names; the order defines the mixed-radix encoding.
ATTRIBUTES: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("upper_colour", tuple(UPPER_COLOURS)),
    ("upper_pattern", ("solid", "stripes", "checks", "dots", "two_tone")),
    ("lower_colour", tuple(LOWER_COLOURS)),
    ("lower_type", ("trousers", "shorts", "skirt")),
    ("hair_colour", tuple(HAIR_COLOURS)),
    ("skin_tone", tuple(SKIN_TONES)),
    ("accessory", ("none", "backpack", "shoulder_bag", "hat")),
    ("body", tuple(BODY_SHAPES)),
)
NUM_COMBINATIONS = int(np.prod([len(v) for _, v in ATTRIBUTES]))

#: Source datasets that own an identity pool; the pool index is the position in this tuple.
PRETRAIN_POOLS = ("crowdhuman", "ecp", "msmt17", "cuhk03", "luperson")
SEARCH_POOLS = ("prw", "cuhk_sysu", "posetrack21")
POOLS = PRETRAIN_POOLS + SEARCH_POOLS


@dataclasses.dataclass(frozen=True)
class Appearance:
    """Resolved drawing colours (BGR float, 0-255) and shape of one identity.

    ``upper2`` is the secondary colour of the upper pattern (unused for ``solid``).
    """

    skin: Tuple[float, float, float]
    hair: Tuple[float, float, float]
    upper: Tuple[float, float, float]
    upper2: Tuple[float, float, float]
    lower: Tuple[float, float, float]
    shoes: Tuple[float, float, float]
    accessory_colour: Tuple[float, float, float]
    pattern: str
    lower_type: str
    accessory: str
    body: BodyShape
    long_sleeves: bool


def _contrast(colour: Tuple[int, int, int]) -> Tuple[int, int, int]:
    luma = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    return (240, 240, 240) if luma < 120 else (40, 35, 30)


@dataclasses.dataclass(frozen=True)
class Identity:
    """One identity: an index into the attribute combination space.

    Attributes:
        combo: combination index in ``[0, NUM_COMBINATIONS)``.
    """

    combo: int

    @property
    def attributes(self) -> Dict[str, str]:
        """Attribute name -> value name, decoded from :attr:`combo` (mixed radix)."""
        out, rest = {}, self.combo
        for name, values in ATTRIBUTES:
            rest, k = divmod(rest, len(values))
            out[name] = values[k]
        return out

    def appearance(self) -> Appearance:
        """The colours and shape this identity is drawn with."""
        a = self.attributes
        upper = UPPER_COLOURS[a["upper_colour"]]
        return Appearance(
            skin=SKIN_TONES[a["skin_tone"]],
            hair=HAIR_COLOURS[a["hair_colour"]],
            upper=upper,
            upper2=_contrast(upper),
            lower=LOWER_COLOURS[a["lower_colour"]],
            shoes=(30, 30, 35) if self.combo % 3 else (200, 200, 205),
            accessory_colour=ACCESSORY_COLOURS[self.combo % len(ACCESSORY_COLOURS)],
            pattern=a["upper_pattern"],
            lower_type=a["lower_type"],
            accessory=a["accessory"],
            body=BODY_SHAPES[a["body"]],
            long_sleeves=bool((self.combo // 7) % 2),
        )


def mannequin_appearance(rng: np.random.Generator) -> Appearance:
    """A person-shaped distractor: one plastic colour everywhere, no pattern, no hair."""
    c = tuple(float(v) for v in rng.choice([(200, 215, 225), (230, 230, 230), (130, 130, 130)]))
    return Appearance(
        c, c, c, c, c, c, c, "solid", "trousers", "none", BODY_SHAPES["slim_tall"], True
    )


class IdentityBank:
    """Deals disjoint identity pools out of one seeded permutation of the combination space.

    Args:
        seed: world seed.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, 0x1D])
        self._perm = rng.permutation(NUM_COMBINATIONS)
        #: pool -> combination indices handed out so far (the world records them).
        self.used: Dict[str, set] = {}

    def pool_size(self) -> int:
        """How many identities each pool can hand out."""
        return NUM_COMBINATIONS // len(POOLS)

    def get(self, pool: str, i: int) -> Identity:
        """The ``i``-th identity of ``pool`` (one of :data:`POOLS`)."""
        k = POOLS.index(pool)
        if not 0 <= i < self.pool_size():
            raise IndexError(f"pool {pool!r} has {self.pool_size()} identities, asked for #{i}")
        combo = int(self._perm[k + i * len(POOLS)])
        self.used.setdefault(pool, set()).add(combo)
        return Identity(combo)

    def take(self, pool: str, start: int, n: int) -> List[Identity]:
        """Identities ``start .. start + n - 1`` of ``pool``."""
        return [self.get(pool, i) for i in range(start, start + n)]
