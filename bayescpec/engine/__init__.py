"""Engine: from a ``Study`` to a fitted ``xarray.DataTree`` -- evidence aggregation, the model builder, the
pointwise likelihood, sampling, and the PSIS fast path."""
