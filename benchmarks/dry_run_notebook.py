"""Write a one-cell notebook for the dry run of device_run.sh (`make gpu-device-dry-run`): it
stands in for chapters 3-5, whose nbval run takes minutes on a CPU, to exercise the nbval step.

    python benchmarks/dry_run_notebook.py PATH.ipynb
"""

import json
import sys

cell = {
    "cell_type": "code",
    "execution_count": None,
    "metadata": {},
    "outputs": [],
    "source": ["import scanbook as sb\n", "print(sb.bench.bytes_per_element())"],
}
notebook = {
    "cells": [cell],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
with open(sys.argv[1], "w") as f:
    json.dump(notebook, f, indent=1)
