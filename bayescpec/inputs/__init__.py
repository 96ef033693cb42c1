"""Inputs: reading the framework, prior-set, evidence and sources files into a validated, frozen ``Study``;
the proposition query language; appending evidence to the log (the only writer of an input file)."""
