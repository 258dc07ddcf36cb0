"""Actor hosts side by side: :mod:`.embedded` (in-process, the default) and :mod:`.dapr`
(under daprd), with what both use: :mod:`.store_state` (actor state in a store of this
process), :mod:`.turns` (one call per actor at a time) and :mod:`.deadline`."""
