"""Analysis: why the posterior says what it says, what to observe next, how fragile it is, what policy would change.

Pure functions of a saved result and the study it was fitted on (:func:`.base.study_of`, hash-checked),
computed by reweighting the posterior draws (PSIS, k-hat checked) and refitting only where that is
unreliable: :mod:`.influence` (``explain``), :mod:`.value` (``next``), :mod:`.fragility` with
:mod:`.logprior` (``robustness``), :mod:`.scenarios` (``whatif``); their tables' layouts
(:mod:`.layouts`), figures (:mod:`.figures`) and files and report sections (:mod:`.report`).
"""
