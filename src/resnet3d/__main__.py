"""`python -m resnet3d` runs the command line."""

import sys

from resnet3d.cli import main

sys.exit(main())
