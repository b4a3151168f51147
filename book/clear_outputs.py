"""Clear the outputs of notebooks in place: python book/clear_outputs.py chapters/*.ipynb

The chapters are committed without outputs (tests/test_repo.py checks it); the book build
executes them.
"""

import sys

import nbformat

for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)
    print("cleared", path)
