"""Training: planning groups, fusion, callbacks, the one training function, the local and Ray
executors, recording, and the sweep that runs them all.
"""
