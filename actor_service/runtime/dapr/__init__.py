"""The actor host under ``daprd``: the routes daprd calls and the actors' state client.

:mod:`.host` registers ``QueueActor`` with the SDK's ``DaprActor`` and configures it,
:mod:`.guard` lets only daprd in and one call per actor at a time, :mod:`.actor_route`
answers daprd's method calls without the framework, :mod:`.actor_client` is the actors'
state through daprd (or the host's own store), over :mod:`.sidecar`, the transport to
daprd that the gateway's invoker (:mod:`api.dapr.invoker`) shares.
"""
