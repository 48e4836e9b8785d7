"""Constants shared by the inference tests (a module with a unique name: `conftest` names clash across folders)."""

CLASSES = ["left", "right", "still"]


def save_tiny_checkpoint(path, *, seed: int, channels: int = 3, normalization: str = "kinetics"):
    """A resnet10 (widen 0.125, len(CLASSES) classes, 8-frame 32x32 clips) saved as a resnet3d checkpoint at `path`."""
    import torch

    from resnet3d.models.checkpoint import ModelMeta, save_model
    from resnet3d.models.registry import create_model
    from resnet3d.normalization import get_normalization

    torch.manual_seed(seed)
    model = create_model("resnet10", num_classes=len(CLASSES), widen_factor=0.125, n_input_channels=channels)
    meta = ModelMeta(arch=model.arch_name, num_classes=len(CLASSES), options=model.arch_options, class_names=CLASSES,
                     normalization=get_normalization(normalization), clip_length=8, t_stride=1, input_size=32,
                     fps=15.0)
    save_model(path, model, meta)
    return path


def with_running_stats(model):
    """`model` in eval mode with random BN statistics and affine terms, so that folding them is not the identity."""
    import torch

    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()
