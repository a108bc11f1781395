"""
One writer per dataset format. Each module exposes ``SUBDIR`` (its folder under the world root,
the same as the real dataset's) and ``write(root, cfg, bank) -> dict`` returning
``{"splits": {catalog split name: counts}, "detail": {...}, "identities": {...}}``.
"""

from . import crowdhuman, cuhk03, cuhk_sysu, ecp, imagenet, luperson, msmt17, posetrack21, prw

#: Dataset name -> writer module, most expensive first (the order work is handed to processes).
WRITERS = {
    "imagenet": imagenet,  # the ImageNet stand-in: person-free classification images (~18 s)
    "crowdhuman": crowdhuman,
    "cuhk_sysu": cuhk_sysu,
    "prw": prw,
    "ecp": ecp,
    "posetrack21": posetrack21,
    "cuhk03": cuhk03,
    "msmt17": msmt17,
    "luperson": luperson,
}

__all__ = ["WRITERS"]
