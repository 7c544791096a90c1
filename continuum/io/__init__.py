"""Output: ``fields.h5`` and its integrity checks, the XDMF views for ParaView, the run folder."""
