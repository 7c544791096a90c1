"""Finite-element building blocks: the coordinate domains' spaces and their matrices, the
quadrature rule, nonlocal data kernels in factored form, and PETSc solver diagnostics."""
