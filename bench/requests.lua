-- Replays a file of pre-signed callbacks, one line per request ("nonce signature" for
-- voice, "event_id signature" for WhatsApp), each thread taking its own share of lines so
-- no nonce is sent twice. Set by the runner: BENCH_FILE, BENCH_KIND, BENCH_PATH.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  nthreads = counter
  lines = {}
  local n = 0
  local file = io.open(os.getenv("BENCH_FILE"), "r")
  for line in file:lines() do
    if n % tonumber(os.getenv("BENCH_THREADS")) == id then
      table.insert(lines, line)
    end
    n = n + 1
  end
  file:close()
  kind = os.getenv("BENCH_KIND")
  path = os.getenv("BENCH_PATH")
  if kind == "whatsapp" then
    local template = io.open(os.getenv("BENCH_TEMPLATE"), "r")
    prefix, suffix = template:read("*a"):match("^(.-)EVENT_ID(.*)$")
    template:close()
  end
  next_line = 1
  wrapped = 0
end

function request()
  local line = lines[next_line]
  next_line = next_line + 1
  if next_line > #lines then
    next_line = 1
    wrapped = wrapped + 1
  end
  local id, signature = line:match("^(%S+) (%S+)$")
  if kind == "whatsapp" then
    return wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["X-Webhook-Signature"] = signature,
      ["X-Webhook-Event"] = "message.inbound",
    }, prefix .. id .. suffix)
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Vobiz-Signature-V3"] = signature,
    ["X-Vobiz-Signature-V3-Nonce"] = id,
  }, "CallUUID=bench&Event=StartApp")
end

function done(summary, latency, requests)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  io.write(string.format("BENCH non2xx=%d errors=%d wrapped=%d p50=%d p99=%d\n",
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    wraps, latency:percentile(50), latency:percentile(99)))
end
