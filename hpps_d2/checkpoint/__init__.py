"""Weight conversion: external backbones in, pre-trained weights out (see :mod:`.convert`), the
whole model in SeqNet's layout both ways (:mod:`.seqnet`);
reading weight files without running code (:mod:`.io`, :mod:`.checkpointer`)."""

from .convert import (
    INPUT_FORMATS,
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
    pixel_config,
    reorder_input_channels,
    torchvision_arch_of_config,
    torchvision_resnet_to_d2,
    torchvision_shufflenet_to_d2,
    unwrap_state_dict,
    whole_model_for_finetuning,
)
from .seqnet import d2_to_seqnet, seqnet_to_d2
from .io import (
    UnsafeWeightsError,
    WeightsFileError,
    load_weights_file,
    read_checkpoint,
    require_weights_file,
)

__all__ = [
    "INPUT_FORMATS",
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
    "pixel_config",
    "reorder_input_channels",
    "torchvision_arch_of_config",
    "torchvision_resnet_to_d2",
    "torchvision_shufflenet_to_d2",
    "unwrap_state_dict",
    "whole_model_for_finetuning",
    "d2_to_seqnet",
    "seqnet_to_d2",
    "UnsafeWeightsError",
    "WeightsFileError",
    "load_weights_file",
    "read_checkpoint",
    "require_weights_file",
]
