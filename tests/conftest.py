import hpps_d2  # noqa: F401  (applies the compat patches before any test imports detectron2.data)
