"""Queue id <-> actor id: the identity, except for the queue ids ``.`` and ``..``.

``API.md`` allows them (``[A-Za-z0-9._:-]{1,128}``), but ``daprd`` refuses them as
actor ids ("path traversal sequence") and every URL layer would resolve them anyway.
They become ``~.`` and ``~..``: ``~`` is not allowed in a queue id, so no real queue
can collide with them, and both runtimes use the same mapping, so the stored keys
stay the same whichever runtime wrote them.
"""

from __future__ import annotations

_DOTS = (".", "..")
_ESCAPE = "~"


def actor_id_for(queue_id: str) -> str:
    return _ESCAPE + queue_id if queue_id in _DOTS else queue_id


def queue_id_of(actor_id: str) -> str:
    if actor_id.startswith(_ESCAPE) and actor_id[1:] in _DOTS:
        return actor_id[1:]
    return actor_id
