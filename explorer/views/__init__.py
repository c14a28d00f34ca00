"""What a user reads: pure figures and tables, the report, TensorBoard, and the one writer of a
run's views (`summarize`), also for several runs compared.
"""
