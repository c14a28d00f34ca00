"""Configuration: every default and limit, the options of a sweep, model configurations and grids.

Plain data checked without Keras, so a bad value answers in a fraction of a second.
"""
