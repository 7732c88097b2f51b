"""Analysis at the scale of a lab (issue 18): the per-bin analysis as a Dask graph over chunks of bins,
run on a local threaded scheduler or a dask.distributed cluster, for one run or a study of many runs."""
