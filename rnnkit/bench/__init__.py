"""Benchmark rnnkit's recurrent layers against PyTorch, JAX and ONNX Runtime on the CPU.

    python benchmarks/bench.py [--quick] [--json out.json]     (or: rnnkit bench ...)

What is measured. For each cell (LSTM, GRU, RNN), shape and mode, float32:

    shape   T    B   I    H    layers
    tiny    200  1   1    32   1
    small   100  16  32   64   1
    medium  100  32  64   128  1
    charlm  100  64  65   256  1      (one-hot inputs, a character language model)
    large   50   64  256  512  1
    gen     500 single-step calls (T = 1), B = 1, I = 64, H = 256, 2 layers, state carried

modes ``fwd`` (forward only) and ``fwdbwd`` (forward, then the gradients of
L = Σ y ⊙ dy for a fixed random dy with respect to x and every weight); gen is
forward only (mode ``gen``).

Peers, each in its own worker process (so one's threads, caches and allocator do
not disturb another, and each can get its own environment):

    rnnkit        rk.Recurrent, the public layer, as shipped; fwd and gen under
                  rk.no_grad() (inference: no caches for backward)
    rnnkit.fast   the compiled cells of rnnkit.fast called directly (the kernel;
                  ``infer`` for fwd and gen)
    rnnkit-int8   rk.Recurrent with int8 weights (``quantize("int8")``, inference
                  only: fwd and gen); checked against the reference to 5e-2 (the
                  weights' rounding), and compared with onnxruntime's float32 in
                  the last lines ("int8": its median over onnxruntime's)
    rnnkit-numpy  rk.Recurrent with RNNKIT_NO_COMPILE=1 (the NumPy reference path)
    torch         torch.nn.RNN/LSTM/GRU; fwd and gen under no_grad
    jax           the same equations in JAX under jax.jit: the input projection of
                  all steps is one matrix product, jax.lax.scan runs the recurrent
                  part; fwdbwd is forward and jax.vjp in one jitted program; gen
                  calls a jitted one-step function (every layer) once per step;
                  the weights are held transposed, (in, out) as Flax keeps them
    onnxruntime   the layer exported by rnnkit.export.export_onnx (one ONNX LSTM/
                  GRU/RNN node per layer) run by a raw onnxruntime.InferenceSession,
                  default graph optimisations; forward only, so its fwdbwd is
                  recorded as not applicable ("n/a"), not as a failure

The default peers are rnnkit, rnnkit.fast, rnnkit-int8, torch, jax and onnxruntime; one whose
library does not import in its worker is skipped with the reason. JAX compiles and
ONNX Runtime optimises its program before any timing (the correctness check and
the warmup run it), never inside a timed repetition. Every timed JAX call waits for
its result (block_until_ready); gen waits at every step, as a generator that reads
each output before it chooses the next input must.

How. Every worker builds the same weights and inputs from one seed. Before any
timing, each peer's outputs (fwd, gen: y and h_n[, c_n]; fwdbwd: dx and every
weight gradient) are compared with torch's (or, without torch, with the first
peer's that runs the mode); a peer that disagrees is not timed and the run exits
with status 1. Timing runs in interleaved rounds — every round visits every case
and, within it, every peer in a rotated order — so slow drifts of the machine
(other processes, clock changes) fall on all peers alike; each timing call first
waits ``SETTLE_S`` idle, so the thread pools of the peer that ran before (they
spin for a while after their last call) are asleep and do not take its cores, and
runs the case ``WARM_CALLS`` times untimed, so what is timed is the steady state of
a loop that repeats one shape. A worker runs every case, and the first calls after
other cases' find their memory gone (a layer's caches and the next forward's
alternate between two buffers, so it takes two calls to map both again): on a
2-core VM, LSTM B=64 H=512 forward+backward took 180-380 ms in those calls and
160-170 after them. Each timing call repeats
the case enough times to last about ``--target`` seconds; the table reports the
median and minimum over all repetitions, the ratio of medians to torch ("vs torch",
< 1: faster than torch) and to the best target peer ("vs best"), the
matrix-product GFLOP/s achieved (2·rows·cols·inner for the input and recurrent
products; backward counts twice the forward's) against this machine's GEMM peak
(the best of a large float32 matmul in each peer's library), and peak memory:
tracemalloc's peak for the NumPy peers (what one repetition allocates), the
worker's maximum resident set size (ru_maxrss, its libraries included) for torch,
jax and onnxruntime, which allocate outside Python's view.

The targets. rnnkit should be no slower than torch and JAX at fwdbwd, and no
slower than the faster of torch and onnxruntime at fwd and gen. So a case's "best"
peer is the fastest of its mode's target peers that ran — torch and jax for
fwdbwd, torch and onnxruntime for fwd and gen — and ``ratios`` holds
``"{peer}/torch"``, ``"{peer}/jax"`` and ``"{peer}/best"`` (median over the best
peer's median; ``best_peer`` names it). A summary table follows the long one: one
row per cell, one column per shape and mode, rnnkit's ratio to the best target
peer and that peer's name (also ``summary`` in the JSON).

Threads. ``--threads N`` sets OMP/OpenBLAS/MKL threads in every worker,
torch.set_num_threads(N), ONNX Runtime's intra_op_num_threads, and the size of
XLA's CPU thread pool. XLA has no option for the latter (XLA_FLAGS'
``--xla_cpu_multi_thread_eigen=false`` leaves jaxlib 0.10's matrix products on
every core); it sizes the pool from the CPUs the process may run on when its
client starts, so the jax worker narrows its CPU affinity to N CPUs while the
client starts and then gives every thread all of them back. On a machine other
processes are busy on, wall-clock times of threaded code say more about the
neighbours than about the code: ``--threads 1 --clock cpu`` times every peer on
one thread by the CPU time it used, which stays steady.
"""

from rnnkit.bench.peers import CELLS, MODES, QUICK_SHAPES, SHAPES, TARGET_PEERS, Shape, matmul_flops
from rnnkit.bench.run import main
from rnnkit.bench.tables import format_summary, format_table, summarise_targets
from rnnkit.bench.worker import compare

__all__ = ["main", "CELLS", "MODES", "SHAPES", "QUICK_SHAPES", "TARGET_PEERS", "Shape",
           "matmul_flops", "compare", "summarise_targets", "format_summary", "format_table"]
