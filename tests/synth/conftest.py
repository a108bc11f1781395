"""A tiny synthetic world, generated once per test session (about 1-2 s)."""

import hashlib
import json
import os

import pytest

from hpps_d2.synth import generate_world

#: Settings of the session world: small, but above every minimum size.
TINY = {"seed": 0, "scale": 0.1}


def tree_hashes(root: str) -> dict:
    """Relative path -> sha256 of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """``(root, manifest)`` of a tiny world; tests must not modify it."""
    root = str(tmp_path_factory.mktemp("synth_world"))
    generate_world(root, workers=2, **TINY)
    with open(os.path.join(root, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    return root, manifest
