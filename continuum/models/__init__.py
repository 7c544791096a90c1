"""The continuum models: the registry that declares them, the interface they offer, their
builders, and the printed field theory of a setup."""
