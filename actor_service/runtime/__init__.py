"""Actor hosts: :mod:`.embedded` (in-process, the default) and :mod:`.dapr` (under daprd)."""
