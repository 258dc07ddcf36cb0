"""The measurement toolkit ``pushpop-bench`` and ``benchmarks/`` share: microsecond
histograms, an open- and a closed-loop load generator, CPU meters and pgbench.

Import from the submodules (``histograms``, ``load``, ``cpu``, ``pgbench``); the
package re-exports nothing.
"""
