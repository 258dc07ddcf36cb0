"""Queue id <-> actor id: the identity, except for the queue ids ``.`` and ``..``.

The API allows them (docs/api.md), but ``daprd`` refuses them as actor ids and every URL
layer would resolve them. They become ``~.`` and ``~..`` (``~`` is no queue id character,
so nothing collides), the same in both runtimes, so stored keys never depend on which wrote them.
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
