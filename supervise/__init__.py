"""Process supervision: the child processes pushpop runs, outside the product's code.

Dapr's processes of one host (:mod:`.dapr_host` over :mod:`.dapr_processes` and
:mod:`.dapr_build`), a throwaway PostgreSQL (:mod:`.pgserver`), ``pushpop serve`` as a
child (:mod:`.server`) and free loopback ports (:mod:`.ports`). The CLI, tests, load tests
and benchmarks use it; it imports none of them.
"""
