"""The TensorRT side of ``samexport build``: optimisation-profile planning from the manifest's
graph I/O (:mod:`.profile_planning`) and plan building through polygraphy (:mod:`.plans`).
Importing it does not import TensorRT."""
