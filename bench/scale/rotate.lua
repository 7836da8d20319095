-- wrk: POST a rotation of prepared requests, one per line of REQUESTS_FILE:
-- PATH<TAB>BODY<TAB>Name: value<TAB>... (bench/scale/measure.py requests writes them).
local requests = {}
local next_request = 0

init = function(args)
  -- Built here, where wrk has set its Host header (signatures cover it; wrk.format with a
  -- headers table of its own does not add it).
  for line in io.lines(os.getenv("REQUESTS_FILE")) do
    local fields = {}
    for field in line:gmatch("[^\t]+") do fields[#fields + 1] = field end
    local headers = { Host = wrk.headers["Host"] }
    for k = 3, #fields do
      local name, value = fields[k]:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    requests[#requests + 1] = wrk.format("POST", fields[1], headers, fields[2])
  end
  -- Each wrk thread starts at its own place in the rotation.
  next_request = math.random(#requests) - 1
end

request = function()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

-- wrk counts answers that are not 2xx/3xx; a benchmark of errors is not a benchmark.
done = function(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
