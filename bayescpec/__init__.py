"""bayescpec: Bayesian evidence updating about development-corridor conversion."""

__version__ = "0.1.0"
