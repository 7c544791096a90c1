"""The failure every solver family raises when its state diverges.

:class:`DivergenceError` is raised by the discrete rules (:func:`discrete.training.integrate`)
and by every continuum solver (Galerkin, the local wave and flow solvers, the implicit
perceptron) when the state becomes NaN or infinite, or grows beyond :data:`GROWTH` times its
initial size: an explicit scheme past its stability bound grows like ``|1 + hλ|^k`` and is
caught long before it overflows (docs/parallel-and-output.md, "Divergence").  It names the
step, the time and the cause, and is a ``FloatingPointError``.

numpy only: the discrete side does not import DOLFINx.
"""

from __future__ import annotations

import numpy as np

from .schema import ConfigError as ConfigError  # declared with the schema that raises it

GROWTH = 1e8


class DivergenceError(FloatingPointError):
    """A solve whose state became non-finite or exploded at ``step`` (time ``t``)."""

    def __init__(self, what: str, step: int, t: float, cause: str, advice: str):
        self.what, self.step, self.t, self.cause, self.advice = what, step, t, cause, advice
        super().__init__(f"{what} diverged at step {step} (t = {t:.6g}): {cause}; {advice}")

    def __reduce__(self):  # pickled whole: an error found on rank 0 is raised on every rank
        return type(self), (self.what, self.step, self.t, self.cause, self.advice)


def reference_size(values: np.ndarray) -> float:
    """The size a state is measured against: ``max(‖x₀‖∞, 1)``."""
    return max(float(np.max(np.abs(values), initial=0.0)), 1.0)


def check_growth(
    what: str, values: np.ndarray, reference: float, step: int, t: float, advice: str
) -> None:
    """Raise :class:`DivergenceError` when ``values`` are not finite, or when
    ``‖values‖∞ > GROWTH · reference``."""
    size = float(np.max(np.abs(values), initial=0.0))
    if not np.isfinite(size):
        raise DivergenceError(what, step, t, "the state became NaN or inf", advice)
    if size > GROWTH * reference:
        raise DivergenceError(
            what,
            step,
            t,
            f"the state grew to {size:.3g}, more than {GROWTH:.0e} times its initial size "
            f"{reference:.3g}",
            advice,
        )
