-- wrk script for benchmarks/throughput.py: push or pop over N queues, round robin.
-- args (after --): kind (push|pop), queue id prefix, number of queues
local requests = {}
local turn = 0

function init(args)
  local kind, prefix, queues = args[1], args[2], tonumber(args[3])
  local body = '{"item":{"payload":"' .. string.rep("x", 64) .. '"},"priority":1}'
  local headers = {["Content-Type"] = "application/json"}
  for i = 0, queues - 1 do
    local path = "/queue/" .. prefix .. "-" .. i
    if kind == "push" then
      requests[i + 1] = wrk.format("POST", path .. "/push", headers, body)
    else
      requests[i + 1] = wrk.format("POST", path .. "/pop?depth=1", nil, "")
    end
  end
end

function request()
  turn = turn + 1
  return requests[turn % #requests + 1]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
