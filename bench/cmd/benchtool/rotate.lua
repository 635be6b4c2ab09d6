-- wrk script of the bench harness (embedded in benchtool, written to the run's
-- temp dir). It sends GET <path>, rotating one header through the values in a
-- file, one per line, starting after <offset>, and prints one BENCHJSON line.
-- With <mode> "paths", each line is "PATH VALUE": the path rotates with the
-- header (the routes scale run rotates Host and path).
-- wrk ... -s rotate.lua URL -- <path> <header> <file> <offset> [<mode>]
local path, header, values, paths, i = "/", nil, {}, nil, 0

function init(args)
  path = args[1] or "/"
  header = args[2]
  if args[3] and args[3] ~= "" then
    for line in io.lines(args[3]) do values[#values + 1] = line end
  end
  if args[5] == "paths" then
    paths = {}
    for n, line in ipairs(values) do
      local p, v = line:match("^(%S+) (.*)$")
      paths[n], values[n] = p, v
    end
  end
  if #values > 0 then i = (tonumber(args[4]) or 0) % #values end
end

function request()
  if #values == 0 then
    return wrk.format("GET", path)
  end
  i = i % #values + 1
  return wrk.format("GET", paths and paths[i] or path, { [header] = values[i] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
