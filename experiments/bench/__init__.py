"""The pieces of experiments/benchmark.py, one job each.

networks  the networks measured (the starters' own build_model, an MLP, airbench's layout),
          their PyTorch twins (converted layer by layer, same initial weights) and FLOPs
steps     one training or evaluation step of either framework on a fixed random batch
timing    interleaved timed rounds, one table cell; the machine's sgemm peak
isolated  what needs a fresh interpreter: latency, peak memory, cells under other settings
          (one thread, NUMBA_CPU_NAME=haswell)
machine   what the numbers depend on: CPU, versions, load, CPU time of other processes
table     the Markdown tables
"""
