from .defaults import add_hpps_config

__all__ = ["add_hpps_config"]
