"""The public API: `resnet3d.__all__`, docs/api.md and what `import resnet3d` costs agree."""

import re
import subprocess
import sys
from pathlib import Path

import resnet3d

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_public_name_resolves_to_its_object():
    for name in resnet3d.__all__:
        obj = getattr(resnet3d, name)
        assert name == "__version__" or obj.__name__ == name


def test_docs_api_lists_exactly_the_public_names():
    first_cells = [line.split("|")[1] for line in DOC.read_text(encoding="utf-8").splitlines()
                   if line.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Za-z_]\w*)", cell)}
    assert documented == set(resnet3d.__all__) - {"__version__"}


def test_import_resnet3d_does_not_import_torch():
    code = "import sys, resnet3d; resnet3d.__all__; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
