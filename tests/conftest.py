import hpps_d2  # noqa: F401  (applies the compat patches before any test imports detectron2.data)
import pytest


@pytest.fixture(autouse=True)
def _restore_project_logger():
    """Tools run in-process (e.g. train_net.main) set up detectron2's logger for "hpps_d2", which
    stops propagation to the root logger; restore it so later tests' caplog sees the project's
    records again."""
    import logging

    log = logging.getLogger("hpps_d2")
    state = (log.propagate, list(log.handlers), log.level)
    yield
    log.propagate, log.handlers[:] = state[0], state[1]
    log.setLevel(state[2])
