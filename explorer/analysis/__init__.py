"""Statistics of finished runs: aggregates, Pareto front, factors, paired comparisons. No Keras."""
