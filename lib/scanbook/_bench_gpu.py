"""The GPU benchmark under its former name: this module IS :mod:`scanbook.bench.gpu`.

``from scanbook import _bench_gpu`` keeps working for chapters 3 and 4 (``load_results``,
``check_targets``, ``PAPER_TABLE1``...). Defined in chapter 4.
"""

import sys

from .bench import gpu as _gpu

sys.modules[__name__] = _gpu
