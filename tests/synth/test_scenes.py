"""Scene ground truth is exact: full boxes where hidden or cut, visible boxes of visible pixels."""

import numpy as np

from hpps_d2.synth.identity import IdentityBank
from hpps_d2.synth.person import Pose, render_person
from hpps_d2.synth.props import OCCLUDERS
from hpps_d2.synth.scenes import Scene


def _scene():
    return Scene(np.full((200, 300, 3), 128, np.uint8), horizon=50.0, ref_height=150.0)


def _person(h=100.0):
    return render_person(
        IdentityBank(0).get("prw", 0).appearance(), Pose(), h, np.random.default_rng(0)
    )


def test_unoccluded_person_boxes_agree():
    scene = _scene()
    sp = _person()
    scene.add(sp, (150.0, 180.0), "person", track=True)
    img, (p,) = scene.render()
    assert p.visible == 1.0 and p.occlusion == 0.0 and p.truncation == 0.0
    assert p.vbox == p.fbox
    x, y, w, h = (int(v) for v in p.fbox)
    assert (
        img[y : y + h, x : x + w][sp.mask[sp.box[1] : sp.box[3], sp.box[0] : sp.box[2]]]
        == sp.image[sp.box[1] : sp.box[3], sp.box[0] : sp.box[2]][
            sp.mask[sp.box[1] : sp.box[3], sp.box[0] : sp.box[2]]
        ]
    ).all()


def test_occluded_person_keeps_full_box():
    scene = _scene()
    person = scene.add(_person(), (150.0, 180.0), "person", track=True)
    bin_ = OCCLUDERS["bin"][0](np.random.default_rng(0), 60.0)
    scene.add(bin_, (150.0, 185.0), "bin")
    _, (p,) = scene.render()
    assert 0 < p.visible < 1 and abs(p.occlusion - (1 - p.visible)) < 1e-9
    fx, fy, fw, fh = p.fbox
    vx, vy, vw, vh = p.vbox
    assert fx <= vx and fy <= vy and vx + vw <= fx + fw and vy + vh < fy + fh  # the legs are hidden
    assert p.fbox == person.fbox


def test_person_cut_by_the_border():
    scene = _scene()
    scene.add(_person(), (5.0, 180.0), "person", track=True)
    _, (p,) = scene.render()
    assert p.fbox[0] < 0 and p.vbox[0] == 0.0 and 0 < p.truncation < 1
    assert p.vbox[0] + p.vbox[2] == p.fbox[0] + p.fbox[2]
