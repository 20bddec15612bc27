"""The TensorRT backend: plan loading, the runner, optimisation profiles as data, and the
compatibility check of a manifest's ``tensorrt`` record against this machine.

Importing this package does not import TensorRT or cuda-python; only loading a plan does.
"""
