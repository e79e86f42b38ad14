-- Appended by bench/load.py to every wrk script: counts responses per status code, keeps the first
-- few distinct error bodies, and prints one "WRK_JSON {...}" line in done(). Each wrk thread has its
-- own Lua state, so the counts live in the threads and done() (main state) collects them through
-- thread:get().

local threads = {}
local MAX_BODIES = 5

function setup(thread)
   table.insert(threads, thread)
end

statuses = {}
bodies = {}
local distinct = 0

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status >= 300 and distinct < MAX_BODIES then
      local key = status .. " " .. string.sub(body or "", 1, 200)
      if not bodies[key] then
         bodies[key] = true
         distinct = distinct + 1
      end
   end
end

local function json_string(text)
   return '"' .. string.gsub(text, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
   local counts, seen, samples = {}, {}, {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + n
      end
      for body in pairs(thread:get("bodies")) do
         if not seen[body] then
            seen[body] = true
            table.insert(samples, json_string(body))
         end
      end
   end
   local parts = {}
   for status, n in pairs(counts) do
      table.insert(parts, string.format('"%d":%d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"statuses":{%s},"error_bodies":[%s]}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
      table.concat(parts, ","), table.concat(samples, ",")))
end
