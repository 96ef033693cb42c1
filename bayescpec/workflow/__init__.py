"""Workflow: results over time and settings -- the result store, updates as evidence arrives, vintages,
trajectories and the prior-set comparison."""
