-- wrk script for bench/wrk.sh: POSTs ONAP-shaped service-order notifications (about 1.5 KB,
-- full order items with nulls, as src/simulate/payload.rs builds them), each with a fresh
-- random UUID v4 eventId.
--
--   wrk -t2 -c64 -d10s --latency -s bench/wrk/events.lua URL -- MODE
--
-- MODE (or the MODE environment variable): `spread` picks the order uniformly among 100,000
-- ids; `one` sends every event to the same order. The `done` hook prints one line
-- `WRK_JSON {...}` with the rate, latency percentiles and errors.
--
-- Non-201 answers are counted from wrk's own summary ("Non-2xx or 3xx responses", that is
-- status >= 400), which costs nothing. CHECK_STATUS=1 also counts every answer that is not
-- exactly 201 in a `response` hook, which slows wrk down.

local ORDERS = 100000

local threads = {}
local thread_count = 0

-- Runs in the main state, once per thread, before any request.
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  table.insert(threads, thread)
end

-- A seed no other thread or run shares: the thread's index in the high digits, so the two
-- threads cannot get the same seed, and /dev/urandom below it, so runs differ.
local function fresh_seed(index)
  local bytes = "\0\0\0\0"
  local urandom = io.open("/dev/urandom", "rb")
  if urandom then
    bytes = urandom:read(4)
    urandom:close()
  end
  local noise = bytes:byte(1) * 16777216 + bytes:byte(2) * 65536 + bytes:byte(3) * 256 + bytes:byte(4)
  return index * 4294967296 + noise
end

local function uuid_v4()
  local r = math.random
  return string.format("%04x%04x-%04x-%04x-%04x-%04x%04x%04x",
    r(0, 0xffff), r(0, 0xffff),
    r(0, 0xffff),
    0x4000 + r(0, 0x0fff),
    0x8000 + r(0, 0x3fff),
    r(0, 0xffff), r(0, 0xffff), r(0, 0xffff))
end

-- ONAP's ids are MongoDB ObjectIds: 24 hex digits.
local function order_id(number)
  return string.format("5c98cb4e%016d", number)
end

local function item(id, state, progress)
  return '{"id":"' .. id .. '","action":"add","state":"' .. state .. '","percentProgress":"'
    .. progress .. '","@type":null,"@schemaLocation":null,"@baseType":null,'
    .. '"orderItemRelationship":[],"service":{"id":"e2a5a8b1-55f8-4c3c-9e4b-0c6a1e3c4d' .. id
    .. '","href":null,"name":"vFW-' .. id .. '","serviceState":"active","@type":null,'
    .. '"@schemaLocation":null,"serviceCharacteristic":[{"name":"bandwidth","valueType":null,'
    .. '"value":{"@type":null,"@schemaLocation":null,"serviceCharacteristicValue":"10"}},'
    .. '{"name":"vlan","valueType":null,"value":{"@type":null,"@schemaLocation":null,'
    .. '"serviceCharacteristicValue":"1203"}}],"serviceRelationship":null,"relatedParty":null,'
    .. '"serviceSpecification":{"id":"90b476bc-0988-4417-bae9-41b376f0e1b6","href":null,'
    .. '"name":"vFW","version":"1.0","targetServiceSchema":null,"@type":null,'
    .. '"@schemaLocation":null,"@baseType":null}},"orderItemMessage":[]}'
end

-- What each event says; bodies differ only in eventId, eventDate and the order id.
local KINDS = {
  {
    type = "ServiceOrderItemStateChangeNotification",
    state = "inProgress",
    items = item("01", "inProgress", "50"),
  },
  {
    type = "ServiceOrderItemStateChangeNotification",
    state = "inProgress",
    items = item("02", "completed", "100"),
  },
  {
    type = "ServiceOrderStateChangeNotification",
    state = "completed",
    items = item("01", "completed", "100") .. "," .. item("02", "completed", "100"),
  },
}

-- `mode` is global so that `done` can read it from a thread.
local head, sequence, last_millis, date_second, date_prefix

function init(args)
  mode = args[1] or os.getenv("MODE") or "spread"
  if mode ~= "spread" and mode ~= "one" then
    error("mode must be spread or one, not " .. mode)
  end
  math.randomseed(fresh_seed(thread_index or 0))
  -- LuaJIT's first draws after seeding are poorly mixed.
  for _ = 1, 16 do math.random() end
  head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port
    .. "\r\nContent-Type: application/json;charset=utf-8\r\nContent-Length: "
  sequence = 0
  last_millis = 0
end

-- yyyy-MM-dd'T'HH:mm:ss.SSS'Z', increasing with every request of this thread.
local function event_date()
  last_millis = math.max(last_millis + 1, os.time() * 1000)
  local second = math.floor(last_millis / 1000)
  if second ~= date_second then
    date_second = second
    date_prefix = os.date("!%Y-%m-%dT%H:%M:%S.", second)
  end
  return date_prefix .. string.format("%03dZ", last_millis % 1000)
end

function request()
  sequence = sequence + 1
  local order = order_id(mode == "one" and 0 or math.random(0, ORDERS - 1))
  local kind = KINDS[math.random(1, #KINDS)]
  local body = '{"eventId":"' .. uuid_v4() .. '","eventDate":"' .. event_date()
    .. '","eventType":"' .. kind.type .. '","event":{"id":"' .. order
    .. '","href":"serviceOrder/' .. order .. '","externalId":"BSS-' .. order
    .. '","state":"' .. kind.state .. '","orderDate":"2019-03-25T08:08:50.127Z",'
    .. '"completionDateTime":null,"orderItem":[' .. kind.items .. ']}}'
  return head .. #body .. "\r\n\r\n" .. body
end

if os.getenv("CHECK_STATUS") == "1" then
  not_created = 0
  function response(status)
    if status ~= 201 then not_created = not_created + 1 end
  end
end

function done(summary, latency, requests)
  local not_created
  if os.getenv("CHECK_STATUS") == "1" then
    not_created = 0
    for _, thread in ipairs(threads) do
      not_created = not_created + (thread:get("not_created") or 0)
    end
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local ms = function(p) return latency:percentile(p) / 1000 end
  io.write(string.format(
    'WRK_JSON {"mode":%q,"requests":%d,"seconds":%.3f,"requests_per_second":%.1f,'
      .. '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f},'
      .. '"non_2xx":%d,"not_201":%s,"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    threads[1] and threads[1]:get("mode") or "", summary.requests, seconds, summary.requests / seconds,
    ms(50), ms(90), ms(99), latency.max / 1000, latency.mean / 1000,
    errors.status, not_created and tostring(not_created) or "null",
    errors.connect, errors.read, errors.write, errors.timeout))
end
