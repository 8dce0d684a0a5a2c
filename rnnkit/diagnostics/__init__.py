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

Everything here is NumPy only at import time.
"""

from rnnkit.diagnostics.activations import (collect_activations, encode_text, find_interpretable_units,
                                            activation_html, text_features, write_activation_report)
from rnnkit.diagnostics.gradflow import (cell_params, clipped_grad_norms, format_gradient_table,
                                         gradient_flow_experiment, hidden_grad_norms, hidden_gradients,
                                         jacobian_norms, jacobian_products, recurrent_jacobian_norms,
                                         recurrent_saturation, run_gradients, saturation)
from rnnkit.diagnostics.memory import (ADDING_BASELINE, MEMORY_ADAM_LR, adding_problem, copy_baseline,
                                       copy_memory, format_memory_table, make_memory_model, run_memory,
                                       sequential_digits, train_memory_model)

__all__ = [
    "hidden_gradients", "hidden_grad_norms", "jacobian_products", "jacobian_norms",
    "recurrent_jacobian_norms", "cell_params", "saturation", "recurrent_saturation",
    "clipped_grad_norms", "gradient_flow_experiment", "format_gradient_table", "run_gradients",
    "ADDING_BASELINE", "MEMORY_ADAM_LR", "adding_problem", "copy_memory", "copy_baseline", "sequential_digits",
    "make_memory_model", "train_memory_model", "run_memory", "format_memory_table",
    "encode_text", "collect_activations", "text_features", "find_interpretable_units",
    "activation_html", "write_activation_report",
]
