"""An event writer that prints the loss terms of Eq. 1 by group."""
import logging

from detectron2.utils.events import EventWriter, get_event_storage

__all__ = ["LossGroupPrinter", "LOSS_PREFIXES"]

#: Prefixes of this project's loss keys (detectron2's printer only shows keys containing "loss").
LOSS_PREFIXES = ("det_", "reid_", "ssl_", "adv_")


class LossGroupPrinter(EventWriter):
    """Logs one line per write with the median (over ``window`` iterations) of every loss term."""

    def __init__(self, window: int = 20):
        self.window = window
        self.logger = logging.getLogger("hpps_d2")

    def write(self):
        storage = get_event_storage()
        terms = [
            f"{k}: {h.median(self.window):.4g}"
            for k, h in sorted(storage.histories().items())
            if k.startswith(LOSS_PREFIXES)
        ]
        if terms:
            self.logger.info(f"iter: {storage.iter}  " + "  ".join(terms))
