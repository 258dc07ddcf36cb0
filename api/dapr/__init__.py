"""Dapr mode, gateway side: the client of daprd (:mod:`.invoker`) and the app that mounts
the actor host of :mod:`actor_service.runtime.dapr` next to the gateway (:mod:`.app`);
the launcher of ``pushpop serve --runtime dapr`` (:mod:`.launcher`) and the supervision
of the placement, scheduler and daprd processes (:mod:`.processes`)."""
