"""Check another SSIM implementation against the oracle, and name the convention it differs in.

:func:`check` calls a third-party SSIM function on every case of
:mod:`ssimref.verification.cases`, compares its mean SSIM with the oracle's under a stated
:class:`~ssimref.verification.conventions.Convention`, and, when they disagree, fits the
convention's knobs (window type and size, sigma, covariance normalisation, data range,
border handling and crop, downsampling, the luminance-term defect, an epsilon in the
denominator, the window weights' precision) to the function's answers. A knob change is
accepted only when it makes cases agree to the tolerance; NaN answers never agree; what
no change explains is reported as unexplained (or, under a stated rule, as cancellation).

- :mod:`.calling`: from a target (callable, adapter or name) to one value per case.
- :mod:`.evaluator`: the oracle's formula evaluated fast enough to fit conventions.
- :mod:`.fitting`: the candidate knob changes, the search, the acceptance rule, and the
  rule that labels a residual as cancellation.
- :mod:`.report`: the per-case results, the diagnosis and the printed report.
- :mod:`.runner`: :func:`check`, which ties them together.

Example
-------
>>> from skimage.metrics import structural_similarity
>>> from ssimref.verification.conformance import check
>>> result = check(lambda x, y, data_range: structural_similarity(x, y, data_range=data_range),
...                "skimage", cases=["random_pair", "unit_range"])
>>> result.passed
True
"""

from .evaluator import evaluate, evaluate_map
from .fitting import candidate_changes
from .report import CaseResult, ConformanceResult, Diagnosis
from .runner import check

__all__ = ["check", "evaluate", "evaluate_map", "CaseResult", "Diagnosis",
           "ConformanceResult", "candidate_changes"]
