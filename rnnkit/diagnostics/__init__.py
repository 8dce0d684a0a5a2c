"""Seeing inside recurrent networks: gradient flow through time, long-range memory
benchmarks, and what the gates and units do.

* :mod:`~rnnkit.diagnostics.gradflow` — ‖∂L/∂hₜ‖ for every step, exact Jacobian
  products ‖∂h_T/∂hₜ‖, saturation, gradient norms around clipping, and the
  vanishing/exploding experiment behind ``rnnkit gradients``.
* :mod:`~rnnkit.diagnostics.memory` — the adding problem, copy memory and
  sequential digits, with their no-memory baselines and a runner over cells.
* :mod:`~rnnkit.diagnostics.activations` — states and gates per character of a
  character model, units ranked by what they track, a coloured-text HTML page.
* :mod:`~rnnkit.diagnostics.plots` — the figures (matplotlib, imported lazily).

Everything here is NumPy only at import time, and each module is imported on first use.
"""

from rnnkit._lazy import attach as _attach

__getattr__, __dir__, __all__ = _attach(__name__, attributes={
    "gradflow": ["hidden_gradients", "hidden_grad_norms", "jacobian_products", "jacobian_norms",
                 "recurrent_jacobian_norms", "cell_params", "saturation", "recurrent_saturation",
                 "clipped_grad_norms", "gradient_flow_experiment", "format_gradient_table", "run_gradients"],
    "memory": ["ADDING_BASELINE", "MEMORY_ADAM_LR", "MEMORY_SETUP", "memory_setup", "adding_problem", "copy_memory", "copy_baseline",
               "sequential_digits", "make_memory_model", "train_memory_model", "run_memory",
               "format_memory_table"],
    "activations": ["encode_text", "collect_activations", "text_features", "find_interpretable_units",
                    "activation_html", "write_activation_report"],
})
