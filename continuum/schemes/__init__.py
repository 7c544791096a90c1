"""Time schemes of the field equations beyond the training rules of :mod:`discrete.training`:
implicit (θ, BDF2, Newton), error-controlled (PETSc TS), exact exponential, factored RK4."""
