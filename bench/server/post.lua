-- wrk: POST the same awsQuery body with fixed headers.
-- BODY_FILE holds the body; HEADERS_FILE holds "Name: value" lines (e.g. a SigV4 signature).
local function read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

wrk.method = "POST"
wrk.body = read(os.getenv("BODY_FILE"))
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/x-www-form-urlencoded; charset=utf-8"
local headers = os.getenv("HEADERS_FILE")
if headers and headers ~= "" then
  for line in read(headers):gmatch("[^\r\n]+") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
end

-- wrk counts answers that are not 2xx/3xx; a benchmark of errors is not a benchmark.
done = function(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
