"""Dapr mode, gateway side: the client of daprd (:mod:`.invoker`), the app that mounts the
actor host of :mod:`actor_service.runtime.dapr` next to the gateway (:mod:`.app`), and
``pushpop serve --runtime dapr`` (:mod:`.serve`, over :mod:`supervise.dapr_host`)."""
