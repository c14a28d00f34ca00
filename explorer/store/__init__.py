"""The run folder: which folders a run may use, atomic files and the lock, the records and their
readers (every file checked before it is trusted), and the one resume plan.
"""
