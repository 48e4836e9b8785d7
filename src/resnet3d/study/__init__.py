"""`resnet3d study`: the paper's experiment as one resumable grid of training runs, with its tables and findings."""
