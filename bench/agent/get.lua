-- wrk: GET /v1/credentials with the token of TOKEN_FILE (one pod, cache hits).
local f = assert(io.open(os.getenv("TOKEN_FILE"), "rb"))
wrk.headers["Authorization"] = f:read("*l")
f:close()
done = function(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
