"""The field theories: Galerkin product fields of dense, banded, index and residual
networks, the local (gradient-expansion) theories, the perceptron on a mesh, and their
mechanics (energy, depth, SGD fluctuations) — docs/physics.md."""
