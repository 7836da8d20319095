-- wrk: GET /v1/credentials, each request with the next token of TOKENS_FILE (one pod each).
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do
  tokens[#tokens + 1] = line
end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/v1/credentials", { ["Authorization"] = tokens[i] })
end
done = function(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
