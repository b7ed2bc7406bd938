-- wrk: create + send. Each created gift's id goes to this thread's queue; the thread's next
-- request sends the oldest one, else creates another gift. A pair is counted when its send
-- answers 202; done() prints the pairs so scripts/bench can compute pairs/s.
local all = {}

function setup(thread)
  table.insert(all, thread)
end

local pending = {}
local head, tail = 1, 0
pairs_done = 0
bad = 0

function request()
  if head <= tail then
    local id = pending[head]
    pending[head] = nil
    head = head + 1
    return wrk.format("POST", "/gifts/" .. id .. "/send", { ["Idempotency-Key"] = "bench-key", ["Content-Length"] = "0" })
  end
  return wrk.format("POST", "/gifts", { ["Content-Type"] = "application/json" }, '{"amount": 1000, "message": "thank you"}')
end

function response(status, _, body)
  if status == 201 then
    local id = body:match('"gift_id":"([^"]+)"')
    tail = tail + 1
    pending[tail] = id
  elseif status == 202 then
    pairs_done = pairs_done + 1
  else
    bad = bad + 1
  end
end

function done(summary, _, _)
  local n, b = 0, 0
  for _, t in ipairs(all) do
    n = n + t:get("pairs_done")
    b = b + t:get("bad")
  end
  io.write(string.format("PAIRS %d %d %.3f\n", n, b, summary.duration / 1e6))
end
