"""bayescpec: Bayesian evidence updating about development-corridor conversion.

Data flow: files -> :func:`load_study` (validated, frozen) -> :func:`build_model` ->
:func:`fit` (samples; returns an ``xarray.DataTree``) -> tables (:func:`channel_table` ...).
"""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    BayescpecError,
    ConvergenceError,
    EvidenceError,
    InputError,
    ResultMismatchError,
    SpecError,
)
from .study import Study, load_study  # noqa: E402
from .model import build_model  # noqa: E402
from .fit import ConvergenceWarning, fit  # noqa: E402
from .summary import (  # noqa: E402
    channel_table,
    constraint_table,
    conversion_probability,
    ipcc_likelihood,
    proposition_table,
)
from .results import check_inputs, load_result, read_table, save_result, write_table  # noqa: E402

__all__ = [
    "__version__",
    "load_study",
    "Study",
    "build_model",
    "fit",
    "channel_table",
    "proposition_table",
    "constraint_table",
    "conversion_probability",
    "ipcc_likelihood",
    "save_result",
    "load_result",
    "check_inputs",
    "write_table",
    "read_table",
    "BayescpecError",
    "InputError",
    "SpecError",
    "EvidenceError",
    "ResultMismatchError",
    "ConvergenceError",
    "ConvergenceWarning",
]

# Rerunning as evidence arrives (issue 4): append, fast path / refit, vintages, trajectory.
from .update import AppendReport, UpdateOutcome, append_evidence, update_evidence, update_result  # noqa: E402
from .fastpath import PsisUpdate, psis_update  # noqa: E402
from .vintages import ResultDiff, diff, history, list_vintages, load_vintage, save_vintage  # noqa: E402
from .trajectory import as_of_study, evidence_trajectory, plot_trajectory  # noqa: E402

__all__ += [
    "append_evidence",
    "update_evidence",
    "update_result",
    "AppendReport",
    "UpdateOutcome",
    "psis_update",
    "PsisUpdate",
    "save_vintage",
    "load_vintage",
    "list_vintages",
    "history",
    "diff",
    "ResultDiff",
    "as_of_study",
    "evidence_trajectory",
    "plot_trajectory",
]
