# Switches on tests/emulated_gpu.py in every Python process that has this folder on PYTHONPATH and
# FTLIB_EMULATE_GPU=1 in its environment: the notebook tests use it to run each lesson's kernel as on a T4.
import os
import sys

if os.environ.get("FTLIB_EMULATE_GPU"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import emulated_gpu

    emulated_gpu.start()
