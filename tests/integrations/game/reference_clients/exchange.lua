-- Drives the Lua reference client through one exchange with a running server.
-- Usage: lua5.4 exchange.lua CLIENT_DIR PORT NPC OTHER_NPC QUESTION
-- Prints one "RESULT <name> <json>" line per step; exits 1 on the first failure.

local client_dir, port, npc, other, question = arg[1], tonumber(arg[2]), arg[3], arg[4], arg[5]
package.path = client_dir .. "/?.lua;" .. package.path
local personae = require("personae_client")

local function report(name, value)
  print("RESULT " .. name .. " " .. personae.encode(value))
  io.stdout:flush()
end

local function fail(step, err)
  io.stderr:write(step .. " failed: " .. tostring(err) .. "\n")
  os.exit(1)
end

local client, err = personae.connect("127.0.0.1", port, {
  world = "millbrook", slot = "lua-test", timeout = 20,
  capabilities = { streaming = false, sentences = true, emotions = true, actions = true },
})
if not client then fail("connect", err) end
report("welcome", client.welcome)

local ack, werr = client:world({
  npc = npc, location = "The Copper Kettle, common room", time = "Day 1, evening",
  actors = { { id = "lua-player", name = "Ada", description = "A tired traveller" } },
  facts = {},
  affordances = { { action = "give_item", targets = { "lua-player" } }, { action = "rent_room" } },
})
if not ack then fail("world", werr) end
report("world", { type = ack.type, reply_to = ack.final.reply_to, id = ack.id })

local streamed = {}
local result, serr = client:say(npc, question, {
  player = { id = "lua-player", name = "Ada" },
  on_sentence = function(msg) streamed[#streamed + 1] = msg.text end,
})
if not result then fail("say", serr) end
if #streamed ~= #result.sentences then fail("say", "on_sentence missed sentences") end
for _, action in ipairs(result.actions) do
  local done, aerr = client:action_result(action.action_id, true, "done")
  if not done then fail("action_result", aerr) end
end
report("say", {
  id = result.id, type = result.type, reply_to = result.final.reply_to, text = result.text,
  sentences = personae.array(result.sentences), emotion = result.emotion or personae.null,
  actions = #result.actions,
})

-- Two NPCs witness it (one listed twice): one answer each ends the request.
local event, eerr = client:event("A cart horse neighs outside.", {
  npc = npc, witnesses = { npc, other, npc }, react = "never",
})
if not event then fail("event", eerr) end
local replies = {}
for i, msg in ipairs(event.replies) do
  replies[i] = { type = msg.type, npc = msg.npc, reply_to = msg.reply_to, reason = msg.reason }
end
report("event", { id = event.id, type = event.type, replies = replies })

local nobody, nerr = client:say("nobody-here", "Hello?")
if nobody then fail("unknown npc", "expected an error, got " .. nobody.type) end
report("unknown_npc", { code = nerr.code, message = nerr.message, reply_to = nerr.reply_to })

local bad, berr = client:request({ type = "say", npc = npc, text = "", mood = "grumpy" })
if bad then fail("bad message", "expected an error, got " .. bad.type) end
report("bad_message", { code = berr.code, message = berr.message, reply_to = berr.reply_to })

client:close()
