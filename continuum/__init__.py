"""The continuum limit: field theories, the finite-element solver, comparison, output, CLI."""
