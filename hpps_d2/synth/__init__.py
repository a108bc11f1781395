"""
The synthetic world: a seeded generator that writes every dataset of the paper in its real
on-disk format (CrowdHuman, ECP, MSMT17, CUHK03, LUPerson, PRW, CUHK-SYSU, PoseTrack21), so the
project's own loaders read it with no real data. See ``docs/synthetic_world.md``.

Layout of the package: :mod:`.config` (knobs, sizes, seeding), :mod:`.identity` (identities as
attribute combinations), :mod:`.person` and :mod:`.paint` (procedural people), :mod:`.sprite`
(drawn objects), :mod:`.props` (distractors, occluders), :mod:`.backgrounds` and :mod:`.styles`
(per-source look), :mod:`.scenes` (composition with exact ground truth), :mod:`.crops` (re-ID
crops), :mod:`.writers` (one module per format), :mod:`.world` (orchestration).
"""

from .config import SIZES, Knobs, WorldConfig
from .world import generate_world

__all__ = ["Knobs", "SIZES", "WorldConfig", "generate_world"]
