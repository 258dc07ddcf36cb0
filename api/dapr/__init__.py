"""Dapr mode: the app daprd calls (:mod:`.app`), the gateway's client of daprd
(:mod:`.invoker`), the launcher of ``pushpop serve --runtime dapr`` (:mod:`.launcher`)
and the supervision of the placement, scheduler and daprd processes (:mod:`.processes`)."""
