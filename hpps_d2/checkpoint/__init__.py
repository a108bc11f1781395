"""Weight conversion: external backbones in, pre-trained weights out (see :mod:`.convert`)."""

from .convert import (
    RESNET_ARCHS,
    SHUFFLENET_ARCHS,
    IncompatibleWeightsError,
    check_shapes,
    config_overrides,
    d2_to_torchvision,
    d2_to_torchvision_resnet,
    d2_to_torchvision_shufflenet,
    external_backbone,
    infer_torchvision_arch,
    load_checkpoint,
    torchvision_arch_of_config,
    torchvision_resnet_to_d2,
    torchvision_shufflenet_to_d2,
    unwrap_state_dict,
    whole_model_for_finetuning,
)

__all__ = [
    "RESNET_ARCHS",
    "SHUFFLENET_ARCHS",
    "IncompatibleWeightsError",
    "check_shapes",
    "config_overrides",
    "d2_to_torchvision",
    "d2_to_torchvision_resnet",
    "d2_to_torchvision_shufflenet",
    "external_backbone",
    "infer_torchvision_arch",
    "load_checkpoint",
    "torchvision_arch_of_config",
    "torchvision_resnet_to_d2",
    "torchvision_shufflenet_to_d2",
    "unwrap_state_dict",
    "whole_model_for_finetuning",
]
