"""The application: one experiment end to end, width and degree studies, ensembles, figures
and the ``synfield`` command line."""
