"""Analysis: pure functions over the values: the delta of two kernels, a kmod's verdict,
the impact of a delta, a series of kernels, the rebuild plan and a rebuild's outcome."""
