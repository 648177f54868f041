--- personae game NPC protocol v1: a reference client for Lua 5.4.
--
-- Needs lua-cjson (to read JSON) and LuaSocket (TCP). Speaks JSON lines over
-- TCP to `personae game serve PERSONA... --tcp PORT`.
--
--     local personae = require("personae_client")
--     local client = assert(personae.connect("127.0.0.1", 7777, {world = "millbrook"}))
--     local result, err = client:say("brenna-innkeeper", "Do you have a room?", {
--       on_sentence = function(msg) print(msg.text) end,   -- speak it, show it
--       on_action = function(msg)                           -- carry it out
--         client:action_result(msg.action_id, true, "the key is in the player's bag")
--       end,
--     })
--     if not result then print("error: " .. tostring(err)) end
--
-- Blocking calls (`connect`, `say`, `event`, `world`, `request`) wait for the
-- message that ends their request: `reply`, `no_response`, `ack`, `welcome`,
-- `saved`, `loaded`, or `error` (an `event` gets a `reply` or `no_response`
-- from each witness). They return the collected result, or `nil`
-- and an error table `{code = ..., message = ..., reply_to = ...}` whose
-- tostring is "code: message". Codes are the server's (`unknown_npc`,
-- `bad_message`, ...) plus the client's own: `timeout`, `disconnected`,
-- `bad_json` (the server sent a line that is not a message), and
-- `too_large` or `bad_message` for a message that cannot be sent.
--
-- A game loop that must not block calls `client:start(msg, handlers)` and then
-- `client:poll()` once per frame; handlers run from inside `poll`.

local cjson = require("cjson")
local socket = require("socket")

local M = {}

M.PROTOCOL_VERSION = 1
M.VERSION = "personae-lua/1.0"
--- Largest line the server accepts (64 KiB); longer messages are refused here.
M.MAX_MESSAGE_BYTES = 64 * 1024
--- Put this where a JSON `null` must be sent.
M.null = cjson.null

-- Messages that end a request: nothing more comes for its id after one of these.
local FINAL = {
  reply = true, no_response = true, ack = true, welcome = true,
  saved = true, loaded = true, error = true,
}

-- Protocol fields that are lists: an empty Lua table there is sent as [] (an
-- empty table is ambiguous in Lua, and cjson would send {}).
local LIST_FIELDS = {
  actors = true, facts = true, affordances = true, targets = true, witnesses = true,
}

local array_mt = {}

--- Mark a table as a JSON array, so that an empty one is sent as [].
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

-- -- errors --------------------------------------------------------------------

local error_mt = {
  __tostring = function(e) return e.code .. ": " .. e.message end,
}

local function new_error(code, message, reply_to)
  return setmetatable({ code = code, message = message, reply_to = reply_to }, error_mt)
end

-- -- JSON writing ----------------------------------------------------------------
-- Written here rather than with cjson.encode, because cjson cannot tell an
-- empty array from an empty object.

local ESCAPES = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local encode_value

local function is_sequence(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return n > 0, n
end

local function encode_table(t, key, path)
  local seq, n = is_sequence(t)
  local empty = next(t) == nil
  if seq or (empty and (getmetatable(t) == array_mt or LIST_FIELDS[key])) then
    local parts = {}
    for i = 1, n or 0 do parts[i] = encode_value(t[i], nil, path .. "[" .. i .. "]") end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      error(string.format("%s: key %s is not a string; JSON objects need string keys",
        path, tostring(k)), 0)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)  -- a stable order makes messages easy to compare in logs
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = encode_string(k) .. ":" .. encode_value(t[k], k, path .. "." .. k)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function encode_value(v, key, path)
  local kind = type(v)
  if v == cjson.null then
    return "null"
  elseif kind == "string" then
    return encode_string(v)
  elseif kind == "boolean" then
    return tostring(v)
  elseif kind == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v ~= v or v == math.huge or v == -math.huge then
      error(path .. ": " .. tostring(v) .. " is not a JSON number", 0)
    end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  elseif kind == "table" then
    return encode_table(v, key, path)
  end
  error(string.format("%s: a %s cannot be sent as JSON", path, kind), 0)
end

--- Encode a Lua value as JSON text (empty list fields become []).
function M.encode(value)
  return encode_value(value, nil, "message")
end

-- -- JSON reading ------------------------------------------------------------------

-- Turn cjson's output into plain Lua: `null` members are dropped (so
-- `msg.reply_to == nil` works), whole floats become integers.
local function normalize(v)
  if type(v) == "table" then
    local out = {}
    for k, item in pairs(v) do
      if item ~= cjson.null or type(k) == "number" then out[k] = normalize(item) end
    end
    return out
  elseif math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return math.tointeger(v)
  end
  return v
end

--- Decode one JSON message; returns the table, or nil and an error table.
function M.decode(text)
  local ok, value = pcall(cjson.decode, text)
  if not ok then
    return nil, new_error("bad_json", "the server sent a line that is not JSON: " .. tostring(value))
  end
  if type(value) ~= "table" or type(value.type) ~= "string" then
    return nil, new_error("bad_json", "the server sent JSON that is not a protocol message: " .. text)
  end
  return normalize(value)
end

-- -- the client --------------------------------------------------------------------

local Client = {}
Client.__index = Client

--- Open a TCP connection and say hello; returns the client or nil and an error.
--
-- opts: `timeout` (seconds for each request, default 30), `connect_timeout`
-- (default 5), `world`, `slot` (default "default"), `client` (a name for the
-- server's logs), `capabilities` (e.g. `{streaming = true}`), `on_message`
-- (called with every message no request claims: unsolicited ones, and
-- errors without `reply_to`).
function M.connect(host, port, opts)
  opts = opts or {}
  local sock = socket.tcp()
  sock:settimeout(opts.connect_timeout or 5)
  local ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    return nil, new_error("disconnected", string.format(
      "could not connect to %s:%s (%s); is `personae game serve ... --tcp %s` running?",
      host, tostring(port), tostring(err), tostring(port)))
  end
  sock:setoption("tcp-nodelay", true)
  local client = setmetatable({
    sock = sock,
    timeout = opts.timeout or 30,
    on_message = opts.on_message,
    unclaimed = {},
    _pending = {},
    _partial = "",
    _next = 0,
    _closed = false,
  }, Client)
  local welcome, herr = client:request({
    type = "hello",
    protocol = M.PROTOCOL_VERSION,
    client = opts.client or M.VERSION,
    world = opts.world or "default",
    slot = opts.slot or "default",
    capabilities = opts.capabilities or {},
  })
  if not welcome then
    client:close()
    return nil, herr
  end
  client.welcome = welcome.final
  client.npcs = welcome.final.npcs or {}
  return client
end

--- A fresh message id, unique within this connection.
function Client:next_id(prefix)
  self._next = self._next + 1
  return string.format("%s-%d", prefix or "lua", self._next)
end

--- Send one message as it is (an `id` is added when missing); returns the id.
function Client:send(msg)
  if self._closed then
    return nil, new_error("disconnected", "the connection is closed; connect again")
  end
  msg.id = msg.id or self:next_id(msg.type)
  local ok, line = pcall(M.encode, msg)
  if not ok then
    return nil, new_error("bad_message", line)
  end
  return self:send_line(line, msg.id)
end

--- Send one raw line (for tests and tools); returns `id` unchanged.
function Client:send_line(line, id)
  if #line + 1 > M.MAX_MESSAGE_BYTES then
    return nil, new_error("too_large", string.format(
      "message %s is %d bytes; the server accepts at most %d, so shorten its text",
      tostring(id), #line + 1, M.MAX_MESSAGE_BYTES))
  end
  local sent, err = self.sock:send(line .. "\n")
  if not sent then
    self:_lost(err)
    return nil, new_error("disconnected", "sending failed: " .. tostring(err))
  end
  return id
end

-- How many `reply`/`no_response` messages end a request: one per distinct
-- witness of an event, else one.
local function count_answers(msg)
  if msg.type ~= "event" or type(msg.witnesses) ~= "table" or #msg.witnesses == 0 then
    return 1
  end
  local seen, n = {}, 0
  for _, witness in ipairs(msg.witnesses) do
    if not seen[witness] then seen[witness], n = true, n + 1 end
  end
  return n
end

--- Send a request without waiting; `poll` collects its answer.
--
-- handlers: `on_sentence`, `on_delta`, `on_action`, `on_emotion`,
-- `on_relationship`, `on_message` (every message of the request), and
-- `on_done(result, err)` when it ends. `timeout` overrides the client's.
-- Returns the request id, or nil and an error.
function Client:start(msg, handlers)
  handlers = handlers or {}
  local id, err = self:send(msg)
  if not id then return nil, err end
  self._pending[id] = {
    answers = count_answers(msg),
    id = id,
    handlers = handlers,
    deadline = socket.gettime() + (handlers.timeout or self.timeout),
    result = { id = id, sentences = {}, actions = {}, messages = {}, replies = {}, text = "" },
    cancel_on_timeout = msg.type == "say" or msg.type == "event",
  }
  return id
end

--- Whether a request started with `start` is still waiting for its answer.
function Client:pending(id)
  return self._pending[id] ~= nil
end

local function finish(self, entry, err)
  self._pending[entry.id] = nil
  entry.done, entry.err = true, err
  if entry.handlers.on_done then entry.handlers.on_done(entry.result, err) end
end

local DISPATCH = {
  sentence = function(result, msg, h)
    result.sentences[#result.sentences + 1] = msg.text
    if h.on_sentence then h.on_sentence(msg) end
  end,
  delta = function(result, msg, h)
    result.text = result.text .. msg.text
    if h.on_delta then h.on_delta(msg) end
  end,
  action = function(result, msg, h)
    result.actions[#result.actions + 1] = msg
    if h.on_action then h.on_action(msg) end
  end,
  emotion = function(result, msg, h)
    result.emotion = msg.emotion
    if h.on_emotion then h.on_emotion(msg) end
  end,
  relationship = function(result, msg, h)
    if h.on_relationship then h.on_relationship(msg) end
  end,
}

-- Route one message to the request it answers, or to the unclaimed handler.
function Client:_dispatch(msg)
  local entry = msg.reply_to and self._pending[msg.reply_to]
  if not entry then
    if self.on_message then
      self.on_message(msg)
    else
      -- Kept (boundedly) so a script can look at what nobody asked for.
      if #self.unclaimed >= 100 then table.remove(self.unclaimed, 1) end
      self.unclaimed[#self.unclaimed + 1] = msg
    end
    return
  end
  local result, h = entry.result, entry.handlers
  result.messages[#result.messages + 1] = msg
  if h.on_message then h.on_message(msg) end
  local handle = DISPATCH[msg.type]
  if handle then handle(result, msg, h) end
  if not FINAL[msg.type] then return end
  result.final, result.type = msg, msg.type
  if msg.type == "error" then
    finish(self, entry, new_error(msg.code or "internal", msg.message or "", msg.reply_to))
    return
  end
  if msg.type == "reply" then
    result.text = msg.text
    result.emotion = msg.emotion or result.emotion
    result.flags = msg.flags or {}
  elseif msg.type == "no_response" then
    result.no_response = msg
  end
  if msg.type == "reply" or msg.type == "no_response" then
    result.replies[#result.replies + 1] = msg
    entry.answers = entry.answers - 1
    if entry.answers > 0 then return end  -- other witnesses of an event still to answer
  end
  finish(self, entry)
end

-- Read one line, waiting at most `wait` seconds; returns the line, or nil and
-- "timeout" / an error text. Partial lines survive a timeout.
function Client:_read_line(wait)
  if self._closed then return nil, "closed" end
  self.sock:settimeout(math.max(wait, 0))
  local line, err, partial = self.sock:receive("*l", self._partial)
  if line then
    self._partial = ""
    return line
  end
  self._partial = partial or ""
  if err ~= "timeout" then self:_lost(err) end
  return nil, err
end

function Client:_lost(reason)
  if self._closed then return end
  self._closed = true
  self.sock:close()
  local ids = {}
  for id in pairs(self._pending) do ids[#ids + 1] = id end
  for _, id in ipairs(ids) do
    finish(self, self._pending[id], new_error("disconnected",
      "connection lost: " .. tostring(reason) .. " (" .. id .. " unanswered)"))
  end
end

-- Fail every request past its deadline, and tell the server to stop working on it.
function Client:_expire()
  local now = socket.gettime()
  local ids = {}
  for id, entry in pairs(self._pending) do
    if now >= entry.deadline then ids[#ids + 1] = id end
  end
  for _, id in ipairs(ids) do
    local entry = self._pending[id]
    if entry.cancel_on_timeout and not self._closed then
      self:send({ type = "cancel", target = id })
    end
    finish(self, entry, new_error("timeout", string.format(
      "no answer to %s within %s s; raise the client's timeout or check the server", id,
      tostring(entry.handlers.timeout or self.timeout))))
  end
end

--- Handle every message that has arrived, waiting at most `wait` seconds
-- (default 0: never block). Returns the number of messages handled.
function Client:poll(wait)
  local handled = 0
  local line = self:_read_line(wait or 0)
  while line do
    local msg, err = M.decode(line)
    -- A line that is not a message answers no request: it goes where unclaimed messages go.
    self:_dispatch(msg or { type = "error", code = err.code, message = err.message })
    handled = handled + 1
    line = self:_read_line(0)
  end
  self:_expire()
  return handled
end

--- Send a message and wait for the message that ends it; see `start` for handlers.
-- Returns the result table (`type`, `final`, `messages`, `sentences`,
-- `actions`, `emotion`, `text`, `flags`, `no_response`, `replies`), or nil
-- and an error.
function Client:request(msg, handlers)
  local done, outcome, failure = false, nil, nil
  handlers = handlers or {}
  local on_done = handlers.on_done
  local wrapped = setmetatable({
    on_done = function(result, err)
      done, outcome, failure = true, result, err
      if on_done then on_done(result, err) end
    end,
  }, { __index = handlers })
  local id, err = self:start(msg, wrapped)
  if not id then return nil, err end
  while not done do
    local entry = self._pending[id]
    self:poll(math.min(0.25, math.max(entry.deadline - socket.gettime(), 0)))
  end
  if failure then return nil, failure end
  return outcome
end

--- A player speaks to an NPC; waits for `reply` or `no_response`.
-- opts: `player = {id = ..., name = ...}`, handlers as in `start`.
function Client:say(npc, text, opts)
  opts = opts or {}
  return self:request({
    type = "say", npc = npc, text = text,
    player = opts.player or { id = "player", name = "Player" },
  }, opts)
end

--- Tell NPCs something happened; waits for a `reply` or `no_response` from each
-- witness (`result.replies`; `result.final` is the last one).
-- fields: `npc`, `actor`, `witnesses`, `react` ("auto", "always", "never").
function Client:event(description, fields, handlers)
  local msg = { type = "event", description = description }
  for k, v in pairs(fields or {}) do msg[k] = v end
  return self:request(msg, handlers)
end

--- Send a `world` snapshot or update (`location`, `time`, `actors`,
-- `affordances`, ...); waits for the `ack`.
function Client:world(fields)
  local msg = { type = "world" }
  for k, v in pairs(fields or {}) do msg[k] = v end
  return self:request(msg)
end

--- Report whether an NPC's action worked; waits for the `ack`.
function Client:action_result(action_id, ok, detail)
  return self:request({
    type = "action_result", action_id = action_id, ok = ok and true or false,
    detail = detail or "",
  })
end

--- Ask the server to stop answering a request (without waiting).
function Client:cancel(target)
  return self:send({ type = "cancel", target = target })
end

--- Close the connection; pending requests end with a `disconnected` error.
function Client:close()
  self:_lost("closed by the client")
end

return M
