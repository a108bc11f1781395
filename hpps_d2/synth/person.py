"""
Procedural person rendering with cv2 primitives.

A person is drawn as a label image of body parts (skin, hair, upper clothes, lower clothes, shoes,
accessory) from a stick skeleton, then coloured through a per-instance lookup table and textured
with the identity's upper-body pattern. The identity fixes colours, pattern, garment type,
accessory and body proportions; the instance varies pose (facing, walking phase, stride, arm
swing, a raised arm, sitting), size and a small colour jitter.
"""

import dataclasses
import math
from typing import Dict, Tuple

import numpy as np

from .identity import Appearance
from .paint import ACC, HAIR, LOWER, SHOES, SKIN, UPPER, colourise, disk, ellipse, line, polar, poly
from .sprite import Sprite

__all__ = ["Pose", "random_pose", "render_person", "FACINGS"]

FACINGS = ("front", "back", "left", "right")


@dataclasses.dataclass(frozen=True)
class Pose:
    """Instance pose.

    Attributes:
        facing: one of :data:`FACINGS` (left/right are side views).
        phase: walking phase in radians.
        stride: stride amplitude in [0, 1] (0 = standing still).
        arm_bend: forearm bend in radians.
        raised_arm: whether one arm is raised (phone, waving).
        sitting: sitting pose (side views only).
        light: horizontal light direction in [-1, 1].
    """

    facing: str = "front"
    phase: float = 0.0
    stride: float = 0.5
    arm_bend: float = 0.2
    raised_arm: bool = False
    sitting: bool = False
    light: float = 0.5


def random_pose(rng: np.random.Generator, sitting_prob: float = 0.0, facing=None) -> Pose:
    """Draw a pose: uniform facing and phase, random stride and arms, rare raised arm."""
    facing = facing or FACINGS[int(rng.integers(4))]
    sitting = bool(rng.random() < sitting_prob)
    if sitting and facing in ("front", "back"):
        facing = "left" if rng.random() < 0.5 else "right"
    return Pose(
        facing=facing,
        phase=float(rng.uniform(0, 2 * math.pi)),
        stride=float(rng.uniform(0.0, 1.0)),
        arm_bend=float(rng.uniform(0.05, 0.7)),
        raised_arm=bool(rng.random() < 0.08),
        sitting=sitting,
        light=float(rng.uniform(-1, 1)),
    )


def render_person(
    app: Appearance,
    pose: Pose,
    height: float,
    rng: np.random.Generator,
    jitter: float = 0.0,
) -> Sprite:
    """
    Draw one person of standing height ``height`` pixels.

    Args:
        app: identity appearance (see :meth:`Identity.appearance`).
        pose: instance pose.
        height: standing height H in pixels (a sitting person is shorter).
        rng: randomness for the colour jitter.
        jitter: std of the per-instance colour gains (appearance jitter knob).

    Returns:
        Sprite: image (h, w, 3) uint8, mask (h, w) bool, anchor at the feet, head box and
        the 17 COCO joints.
    """
    H = max(float(height), 6.0)
    b = app.body
    pad = max(2.0, 0.05 * H)
    side = pose.facing in ("left", "right")
    d = -1.0 if pose.facing == "left" else 1.0
    wf = 0.6 if side else 1.0
    Wc, Hc = int(math.ceil(0.9 * H + 2 * pad)), int(math.ceil(H + 2 * pad))
    cx, top, ground = Wc / 2.0, pad, pad + H
    hr = b.head_r * H
    hip_y = top + b.hip_y * H
    dy = 0.0
    if pose.sitting:
        dy = (ground - 0.27 * H) - hip_y
    head = (cx + (0.02 * H * d if side else 0.0), top + hr + dy)
    neck_y = top + 2 * hr + dy
    sh_y = neck_y + 0.02 * H
    hip_y += dy
    sw, hw = b.shoulder * H * wf, b.hip * H * wf
    leg_w = max(1.5, 0.07 * H * b.thick)
    arm_w = max(1.2, 0.048 * H * b.thick)
    s, ph = pose.stride, pose.phase
    lab = np.zeros((Hc, Wc), np.uint8)

    # Legs: (hip, knee, foot) per leg.
    legs = []
    if pose.sitting:
        thigh = 0.2 * H
        for off in (-0.015 * H, 0.015 * H):
            hp = (cx + off, hip_y)
            kn = (cx + off + d * thigh, hip_y)
            legs.append((hp, kn, (kn[0] + 0.01 * H * d, ground)))
    elif side:
        leg_len = ground - hip_y
        for sgn in (1.0, -1.0):
            a = sgn * s * 0.45 * math.sin(ph) * d
            ft = polar((cx, hip_y), leg_len, a)
            bend = 0.03 * H * abs(math.sin(ph)) * d
            legs.append(((cx, hip_y), ((cx + ft[0]) / 2 + bend, (hip_y + ft[1]) / 2), ft))
    else:
        for sgn, lift in ((-1.0, math.sin(ph)), (1.0, -math.sin(ph))):
            hx = cx + sgn * hw * 0.55
            fx = hx + sgn * (0.01 * H + 0.02 * H * s)
            fy = ground - 0.03 * H * s * max(0.0, lift)
            legs.append(((hx, hip_y), ((hx + fx) / 2, (hip_y + fy) / 2), (fx, fy)))

    # Arms: (shoulder, elbow, hand) per arm; the first is the far arm in side views.
    ul, fl = 0.17 * H, 0.155 * H
    arms = []
    if side:
        for sgn in (1.0, -1.0):
            tu = -sgn * s * 0.55 * math.sin(ph) * d
            sh = (cx, sh_y + 0.01 * H)
            el = polar(sh, ul, tu)
            arms.append((sh, el, polar(el, fl, tu + d * pose.arm_bend)))
    else:
        for sgn in (-1.0, 1.0):
            tu = sgn * (0.08 + 0.1 * pose.arm_bend)
            if pose.raised_arm and sgn > 0:
                tu = sgn * (2.2 + 0.3 * pose.arm_bend)
            sh = (cx + sgn * sw * 0.92, sh_y + 0.01 * H)
            el = polar(sh, ul, tu)
            arms.append((sh, el, polar(el, fl, tu + sgn * 0.1 * pose.arm_bend)))
    if side and pose.raised_arm:
        sh, _, _ = arms[1]
        el = polar(sh, ul, d * 2.4)
        arms[1] = (sh, el, polar(el, fl, d * 2.9))

    def draw_arm(arm):
        sh, el, hd = arm
        line(lab, sh, el, UPPER, arm_w)
        line(lab, el, hd, UPPER if app.long_sleeves else SKIN, arm_w * 0.9)
        disk(lab, hd, arm_w * 0.55, SKIN)

    if side:
        draw_arm(arms[0])
    pack = app.accessory == "backpack"
    if pack and pose.facing == "front":
        poly(lab, _pack_pts(cx, sh_y, H, wf * 1.05, 0.0), ACC)
    for hp, kn, ft in legs:  # legs, shorts and skirt
        garment = LOWER if app.lower_type == "trousers" else SKIN
        w = leg_w if garment == LOWER else leg_w * 0.8
        line(lab, hp, kn, garment, w)
        line(lab, kn, ft, garment, w)
        if app.lower_type == "shorts":
            line(
                lab,
                hp,
                (hp[0] + 0.6 * (kn[0] - hp[0]), hp[1] + 0.6 * (kn[1] - hp[1])),
                LOWER,
                leg_w,
            )
        ellipse(
            lab,
            (ft[0] + (0.015 * H * d if side else 0.0), ft[1] - 0.01 * H),
            (0.035 * H if side else 0.022 * H, 0.016 * H),
            SHOES,
        )
    pel_w = hw * 1.05 if not side else 0.085 * H * b.thick
    poly(
        lab,
        [
            (cx - pel_w, hip_y - 0.04 * H),
            (cx + pel_w, hip_y - 0.04 * H),
            (cx + pel_w, hip_y + 0.05 * H),
            (cx - pel_w, hip_y + 0.05 * H),
        ],
        LOWER,
    )
    if app.lower_type == "skirt":
        ky = legs[0][1][1] + (0.0 if pose.sitting else 0.02 * H)
        flare = 1.6 if not side else 1.3
        far = (d * 0.2 * H) if pose.sitting else 0.0
        poly(
            lab,
            [
                (cx - pel_w, hip_y - 0.03 * H),
                (cx + pel_w, hip_y - 0.03 * H),
                (cx + pel_w * flare + max(far, 0), ky),
                (cx - pel_w * flare + min(far, 0), ky),
            ],
            LOWER,
        )
    # Torso and neck.
    line(lab, head, (cx, sh_y), SKIN, max(1.0, 0.05 * H))
    if side:
        tw = 0.085 * H * b.thick
        poly(
            lab,
            [(cx - tw, sh_y), (cx + tw, sh_y), (cx + tw * 0.95, hip_y), (cx - tw * 0.95, hip_y)],
            UPPER,
        )
    else:
        poly(
            lab,
            [(cx - sw, sh_y), (cx + sw, sh_y), (cx + hw * 1.05, hip_y), (cx - hw * 1.05, hip_y)],
            UPPER,
        )
        for sgn in (-1.0, 1.0):
            disk(lab, (cx + sgn * sw * 0.92, sh_y + 0.01 * H), arm_w * 0.6, UPPER)
    if pack and pose.facing != "front":
        poly(
            lab,
            _pack_pts(cx, sh_y, H, wf * 0.95 if not side else 0.5, -d * 0.1 * H if side else 0.0),
            ACC,
        )
    elif pack:
        for sgn in (-1.0, 1.0):
            line(
                lab,
                (cx + sgn * sw * 0.6, sh_y),
                (cx + sgn * sw * 0.55, hip_y - 0.06 * H),
                ACC,
                max(1, 0.015 * H),
            )
    if app.accessory == "shoulder_bag":
        bx = cx + (hw * 1.1 if not side else 0.02 * H * d)
        line(lab, (cx - sw * 0.7, sh_y), (bx, hip_y - 0.04 * H), ACC, max(1, 0.015 * H))
        poly(
            lab,
            [
                (bx - 0.05 * H, hip_y - 0.06 * H),
                (bx + 0.05 * H, hip_y - 0.06 * H),
                (bx + 0.05 * H, hip_y + 0.03 * H),
                (bx - 0.05 * H, hip_y + 0.03 * H),
            ],
            ACC,
        )
    for arm in arms[1:] if side else arms:
        draw_arm(arm)
    # Head, hair, hat.
    if pose.facing == "back":
        disk(lab, head, hr * 1.02, HAIR)
    elif side:
        disk(lab, head, hr, HAIR)
        disk(lab, (head[0] + d * 0.28 * hr, head[1] + 0.12 * hr), hr * 0.76, SKIN)
    else:
        disk(lab, (head[0], head[1] - 0.12 * hr), hr, HAIR)
        disk(lab, (head[0], head[1] + 0.1 * hr), hr * 0.84, SKIN)
    hat_top = head[1] - hr
    if app.accessory == "hat":
        ellipse(lab, (head[0], head[1] - 0.45 * hr), (1.05 * hr, 0.62 * hr), ACC)
        line(
            lab,
            (head[0] - 1.3 * hr + (0.3 * hr * d if side else 0), head[1] - 0.3 * hr),
            (head[0] + 1.3 * hr + (0.3 * hr * d if side else 0), head[1] - 0.3 * hr),
            ACC,
            max(1, 0.02 * H),
        )
        hat_top = head[1] - 1.1 * hr

    image = colourise(lab, app, pose, rng, jitter, H, cx, sh_y, hip_y)
    joints = _joints(head, hr, arms, legs, side, d)
    head_box = (head[0] - 1.05 * hr, hat_top, head[0] + 1.05 * hr, head[1] + 1.02 * hr)
    meta = {"facing": pose.facing, "sitting": pose.sitting}
    return Sprite.from_drawing(
        image, lab > 0, anchor=(cx, ground), head=head_box, joints=joints, meta=meta
    )


def _pack_pts(cx, sh_y, H, wf, dx):
    w = 0.11 * H * wf
    return [
        (cx + dx - w, sh_y + 0.02 * H),
        (cx + dx + w, sh_y + 0.02 * H),
        (cx + dx + w, sh_y + 0.27 * H),
        (cx + dx - w, sh_y + 0.27 * H),
    ]


def _joints(head, hr, arms, legs, side, d) -> Dict[str, Tuple[float, float]]:
    hx, hy = head
    eye_dx = 0.35 * hr if not side else 0.15 * hr
    fx = d * 0.6 * hr if side else 0.0
    j = {
        "nose": (hx + fx, hy + 0.15 * hr),
        "left_eye": (hx + fx - eye_dx, hy - 0.1 * hr),
        "right_eye": (hx + fx + eye_dx, hy - 0.1 * hr),
        "left_ear": (hx - 0.95 * hr, hy),
        "right_ear": (hx + 0.95 * hr, hy),
    }
    for k, name in enumerate(("left", "right")):
        sh, el, hd = arms[k]
        hp, kn, ft = legs[k]
        j.update({f"{name}_shoulder": sh, f"{name}_elbow": el, f"{name}_wrist": hd})
        j.update({f"{name}_hip": hp, f"{name}_knee": kn, f"{name}_ankle": ft})
    return j
