-- wrk: GET /gifts/{id} for a uniformly drawn pre-filled gift bench_id(1..READ_IDS).
local ids = tonumber(os.getenv("READ_IDS") or "100000")
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(_)
  math.randomseed(seed * 7919)
end

function request()
  return wrk.format("GET", string.format("/gifts/00000000-0000-4000-8000-%012x", math.random(1, ids)))
end
