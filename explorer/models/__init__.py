"""What is trained: the backend and Keras, variants (a name and a builder), the dense builder,
trials (a variant with a seed), the FLOPs a model costs (flops) and the uses of Keras internals,
each guarded.
"""
