-- wrk: POST AdmissionReviews to /mutate, alternating the bodies of REVIEW_FILES
-- (comma-separated), as the API server does for pod CREATEs.
local bodies = {}
for path in os.getenv("REVIEW_FILES"):gmatch("[^,]+") do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
local headers = { ["Content-Type"] = "application/json" }
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/mutate", headers, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
