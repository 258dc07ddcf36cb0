"""Process supervision: the child processes pushpop runs, outside the product's code.

:mod:`.dapr_host` keeps the placement, scheduler and ``daprd`` of one
``pushpop serve --runtime dapr`` host running (over :mod:`.dapr_processes` and
:mod:`.dapr_build`); :mod:`.pgserver` is a throwaway PostgreSQL cluster, :mod:`.server`
``pushpop serve`` as a child process, :mod:`.ports` the free loopback ports they bind.
The CLI, the tests, the load tests and the benchmarks use it; it imports none of them.
"""
