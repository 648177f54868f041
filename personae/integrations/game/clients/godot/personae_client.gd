# personae game NPC protocol v1: a reference client for Godot 3 (GDScript).
#
# Speaks JSON lines over TCP (StreamPeerTCP) to
# `personae game serve PERSONA... --tcp PORT`. Nothing blocks unless asked:
# call `poll()` once per frame (from a node's `_process`) and listen to the
# signals; tools, tests and loading screens may use `wait_for(id)` instead.
#
#     var client = PersonaeClient.new()   # or preload("res://.../personae_client.gd").new()
#     client.connect("sentence", self, "_on_sentence")              # subtitles, TTS
#     client.connect("action_requested", self, "_on_action")        # carry it out
#     client.connect_to_server("127.0.0.1", 7777, "millbrook", "slot-1")
#     var say_id = client.say("brenna-innkeeper", "Do you have a room?")
#     func _process(_delta): client.poll()
#     func _on_action(npc, action):
#         client.send_action_result(action["action_id"], true, "the key is in the bag")
#
# Every request (`say`, `send_event`, `send_world`, ...) returns its message
# id; it ends with one message whose `reply_to` is that id (`reply`,
# `no_response`, `ack`, `welcome`, `saved`, `loaded` or `error`; an `event`
# gets a `reply` or `no_response` from each witness), and then
# `request_finished(id, result)` is emitted. `result` is a Dictionary:
#   id, ok (false on error), type (of the final message), final (that message),
#   messages, sentences (texts), actions (action messages), emotion, text,
#   flags, replies (every `reply`/`no_response`), error ({code, message}; empty when ok).
# Error codes are the server's (`unknown_npc`, `bad_message`, ...) plus the
# client's own `timeout`, `disconnected`, `bad_json` (a line that is not a
# message; reported by `error_received` only) and `too_large` (not sent).
# Numbers arrive as floats (Godot's JSON); `int()` them where needed.
class_name PersonaeClient
extends Reference

signal connected(welcome)
signal disconnected(reason)
signal message_received(message)
signal sentence(npc, text, message)
signal delta(npc, text, message)
signal action_requested(npc, action)
signal emotion_changed(npc, emotion)
signal relationship_changed(npc, actor, value)
signal request_finished(request_id, result)
signal error_received(code, message, reply_to)

const PROTOCOL_VERSION = 1
const VERSION = "personae-godot/1.0"
const MAX_MESSAGE_BYTES = 65536
const FINAL_TYPES = ["reply", "no_response", "ack", "welcome", "saved", "loaded", "error"]
# Finished results kept for `take_result`/`wait_for`; older ones are dropped.
const MAX_FINISHED = 64

enum State { IDLE, CONNECTING, GREETING, READY, CLOSED }

# Seconds a request may wait for its final message.
var timeout_sec := 30.0
# Seconds the TCP connection may take to open.
var connect_timeout_sec := 5.0
# Name sent in `hello`, for the server's logs.
var client_name := VERSION
# Persona ids the server hosts (from `welcome`).
var npcs := []
# The `welcome` message.
var welcome := {}
# The `hello` request's id (wait on it, or on the `connected` signal).
var hello_id := ""
var state: int = State.IDLE

var _tcp := StreamPeerTCP.new()
var _buffer := PoolByteArray()
var _pending := {}
var _finished := {}
var _finished_order := []
var _outbox := []
var _hello := {}
var _connect_deadline := 0
var _address := ""
var _port := 0
var _next_id := 0


# Start connecting; `hello` is sent once the socket is open. Returns OK or an Error.
func connect_to_server(host: String, port: int, world: String = "default",
		slot: String = "default", capabilities: Dictionary = {}) -> int:
	var err = _tcp.connect_to_host(host, port)
	if err != OK:
		return err
	_address = "%s:%d" % [host, port]
	_port = port
	_buffer = PoolByteArray()
	state = State.CONNECTING
	_connect_deadline = OS.get_ticks_msec() + int(connect_timeout_sec * 1000)
	_hello = {
		"type": "hello", "protocol": PROTOCOL_VERSION, "client": client_name,
		"world": world, "slot": slot, "capabilities": capabilities,
	}
	hello_id = _new_id("hello")
	_hello["id"] = hello_id
	_pending[hello_id] = _new_entry(hello_id, false)
	return OK


# Connect and wait for `welcome`; returns the hello request's result.
func connect_and_wait(host: String, port: int, world: String = "default",
		slot: String = "default", capabilities: Dictionary = {}) -> Dictionary:
	var err = connect_to_server(host, port, world, slot, capabilities)
	if err != OK:
		return _failed("", "disconnected", "could not start connecting to %s:%d (error %d)" % [host, port, err])
	return wait_for(hello_id)


# Whether `welcome` has arrived and the connection is open.
func is_ready() -> bool:
	return state == State.READY


# A player speaks to an NPC. Returns the request id.
func say(npc: String, text: String, player_id: String = "player",
		player_name: String = "Player") -> String:
	return send_message({
		"type": "say", "npc": npc, "text": text,
		"player": {"id": player_id, "name": player_name},
	})


# Something happened. `fields` may hold npc, actor, witnesses, react. Returns the request id.
func send_event(description: String, fields: Dictionary = {}) -> String:
	var msg = fields.duplicate(true)
	msg["type"] = "event"
	msg["description"] = description
	return send_message(msg)


# What NPCs perceive and may do: location, time, actors, facts, affordances, mode, npc.
func send_world(fields: Dictionary) -> String:
	var msg = fields.duplicate(true)
	msg["type"] = "world"
	return send_message(msg)


# Whether an action the NPC asked for worked. Returns the request id.
func send_action_result(action_id: String, ok: bool, detail: String = "") -> String:
	return send_message({"type": "action_result", "action_id": action_id, "ok": ok, "detail": detail})


# Stop answering a `say` or `event`.
func cancel(target: String) -> String:
	return send_message({"type": "cancel", "target": target})


# Ask for NPC state to keep in the game's save file (`npc` empty: every NPC).
func save(npc: String = "") -> String:
	var msg = {"type": "save"}
	if npc != "":
		msg["npc"] = npc
	return send_message(msg)


# Give back a `saved` blob (`slot` empty: the blob's own slot).
func load_blob(blob: String, slot: String = "") -> String:
	var msg = {"type": "load", "blob": blob}
	if slot != "":
		msg["slot"] = slot
	return send_message(msg)


# Send any client message (an id is added when missing); returns its id.
# Before `welcome` arrives, messages wait in an outbox.
func send_message(message: Dictionary) -> String:
	var msg = message.duplicate(true)
	if not msg.has("id"):
		msg["id"] = _new_id(str(msg.get("type", "msg")))
	var id: String = msg["id"]
	var cancellable = msg.get("type") in ["say", "event"]
	_pending[id] = _new_entry(id, cancellable)
	_pending[id]["answers"] = _count_answers(msg)
	if state == State.READY:
		_write(id, to_json(msg))
	elif state == State.IDLE:
		_finish(id, "disconnected", "not connected; call connect_to_server first")
	elif state == State.CLOSED:
		_finish(id, "disconnected", "the connection is closed; connect again")
	else:
		_outbox.append([id, to_json(msg)])
	return id


# Send a raw text line as a request with the given id (tools and tests).
func send_raw(id: String, line: String) -> String:
	_pending[id] = _new_entry(id, false)
	_write(id, line)
	return id


# Handle what has arrived: read, dispatch, emit signals, expire requests. Call every frame.
func poll() -> void:
	if state == State.IDLE or state == State.CLOSED:
		return
	if state == State.CONNECTING:
		_poll_connecting()
		if state != State.GREETING:
			return
	var available = _tcp.get_available_bytes()
	if available > 0:
		var got = _tcp.get_partial_data(available)
		if got[0] != OK:
			_lost("reading failed (error %d)" % got[0])
			return
		_buffer.append_array(got[1])
		_split_lines()
	elif _tcp.get_status() != StreamPeerTCP.STATUS_CONNECTED:
		_lost("the server closed the connection")
		return
	_expire()


# Block (polling) until request `id` ends, at most its timeout; returns its result.
# For tools, tests and loading screens: a game frame should use signals instead.
func wait_for(id: String, timeout: float = -1.0) -> Dictionary:
	if timeout >= 0.0 and _pending.has(id):
		_pending[id]["deadline"] = OS.get_ticks_msec() + int(timeout * 1000)
	while _pending.has(id):
		poll()
		if _pending.has(id):
			OS.delay_msec(5)
	return take_result(id)


# The result of a finished request, removed from the client (empty when unknown).
func take_result(id: String) -> Dictionary:
	if not _finished.has(id):
		return {}
	var result = _finished[id]
	_finished.erase(id)
	_finished_order.erase(id)
	return result


# Whether request `id` still waits for its final message.
func is_pending(id: String) -> bool:
	return _pending.has(id)


# Close the connection; pending requests end with a `disconnected` error.
func close() -> void:
	_lost("closed by the client")


# -- internals -----------------------------------------------------------------------

func _new_id(prefix: String) -> String:
	_next_id += 1
	return "%s-%d" % [prefix, _next_id]


func _new_entry(id: String, cancellable: bool) -> Dictionary:
	return {
		"deadline": OS.get_ticks_msec() + int(timeout_sec * 1000),
		"cancellable": cancellable,
		"answers": 1,
		"result": {
			"id": id, "ok": false, "type": "", "final": {}, "messages": [], "sentences": [],
			"actions": [], "emotion": "", "text": "", "flags": [], "replies": [], "error": {},
		},
	}


# How many `reply`/`no_response` messages end a request: one per distinct witness
# of an event, else one.
func _count_answers(msg: Dictionary) -> int:
	if msg.get("type") != "event" or typeof(msg.get("witnesses")) != TYPE_ARRAY:
		return 1
	var distinct = []
	for witness in msg["witnesses"]:
		if not (witness in distinct):
			distinct.append(witness)
	return 1 if distinct.empty() else distinct.size()


func _failed(id: String, code: String, message: String) -> Dictionary:
	var entry = _new_entry(id, false)
	entry["result"]["error"] = {"code": code, "message": message}
	return entry["result"]


func _poll_connecting() -> void:
	var status = _tcp.get_status()
	if status == StreamPeerTCP.STATUS_CONNECTED:
		_tcp.set_no_delay(true)
		state = State.GREETING
		_write(hello_id, to_json(_hello))
	elif status == StreamPeerTCP.STATUS_ERROR or status == StreamPeerTCP.STATUS_NONE:
		_lost("could not connect to %s; is `personae game serve ... --tcp %d` running?" % [_address, _port])
	elif OS.get_ticks_msec() >= _connect_deadline:
		_lost("no connection to %s within %s s" % [_address, connect_timeout_sec])


func _write(id: String, line: String) -> void:
	var data = (line + "\n").to_utf8()
	if data.size() > MAX_MESSAGE_BYTES:
		_finish(id, "too_large", "message %s is %d bytes; the server accepts at most %d, so shorten its text" % [id, data.size(), MAX_MESSAGE_BYTES])
		return
	var err = _tcp.put_data(data)
	if err != OK:
		_lost("sending failed (error %d)" % err)


func _split_lines() -> void:
	var start = 0
	var size = _buffer.size()
	for i in range(size):
		if _buffer[i] == 10:
			if i > start:
				_handle_line(_buffer.subarray(start, i - 1).get_string_from_utf8())
			start = i + 1
	if start >= size:
		_buffer = PoolByteArray()
	elif start > 0:
		_buffer = _buffer.subarray(start, size - 1)


func _handle_line(line: String) -> void:
	var parsed = JSON.parse(line)
	if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY or not parsed.result.has("type"):
		emit_signal("error_received", "bad_json", "the server sent a line that is not a protocol message: %s" % line, "")
		return
	_dispatch(parsed.result)


func _dispatch(msg: Dictionary) -> void:
	emit_signal("message_received", msg)
	var kind = str(msg.get("type"))
	var npc = str(msg.get("npc", ""))
	var reply_to = msg.get("reply_to")
	var entry = _pending.get(reply_to) if typeof(reply_to) == TYPE_STRING else null
	var result = entry["result"] if entry != null else {}
	if entry != null:
		result["messages"].append(msg)
	match kind:
		"sentence":
			if entry != null:
				result["sentences"].append(msg["text"])
			emit_signal("sentence", npc, msg["text"], msg)
		"delta":
			if entry != null:
				result["text"] += msg["text"]
			emit_signal("delta", npc, msg["text"], msg)
		"action":
			if entry != null:
				result["actions"].append(msg)
			emit_signal("action_requested", npc, msg)
		"emotion":
			if entry != null:
				result["emotion"] = msg["emotion"]
			emit_signal("emotion_changed", npc, msg["emotion"])
		"relationship":
			emit_signal("relationship_changed", npc, msg["actor"], msg["value"])
		"error":
			emit_signal("error_received", str(msg.get("code", "internal")), str(msg.get("message", "")),
					reply_to if typeof(reply_to) == TYPE_STRING else "")
	if entry == null or not (kind in FINAL_TYPES):
		return
	result["final"] = msg
	result["type"] = kind
	if kind == "reply":
		result["text"] = msg["text"]
		if msg.get("emotion") != null:
			result["emotion"] = msg["emotion"]
		result["flags"] = msg.get("flags", [])
	elif kind == "welcome":
		welcome = msg
		npcs = msg.get("npcs", [])
		state = State.READY
		for queued in _outbox:
			_write(queued[0], queued[1])
		_outbox.clear()
		emit_signal("connected", msg)
	if kind == "reply" or kind == "no_response":
		result["replies"].append(msg)
		entry["answers"] -= 1
		if entry["answers"] > 0:
			return  # other witnesses of the event still to answer
	if kind == "error":
		_finish(reply_to, str(msg.get("code", "internal")), str(msg.get("message", "")))
	else:
		_finish(reply_to, "", "")


func _finish(id: String, code: String, message: String) -> void:
	if not _pending.has(id):
		return
	var result = _pending[id]["result"]
	_pending.erase(id)
	result["ok"] = code == ""
	if code != "":
		result["error"] = {"code": code, "message": message}
	_finished[id] = result
	_finished_order.append(id)
	while _finished_order.size() > MAX_FINISHED:
		_finished.erase(_finished_order.pop_front())
	emit_signal("request_finished", id, result)


func _expire() -> void:
	var now = OS.get_ticks_msec()
	for id in _pending.keys():
		var entry = _pending.get(id)
		if entry == null or now < entry["deadline"]:
			continue
		if entry["cancellable"] and state == State.READY:
			# The NPC should stop working on an answer nobody waits for.
			var cancel_id = _new_id("cancel")
			_write(cancel_id, to_json({"type": "cancel", "id": cancel_id, "target": id}))
		_finish(id, "timeout", "no answer to %s within %s s; raise timeout_sec or check the server" % [id, timeout_sec])


func _lost(reason: String) -> void:
	if state == State.CLOSED:
		return
	state = State.CLOSED
	_tcp.disconnect_from_host()
	for id in _pending.keys():
		_finish(id, "disconnected", "%s (%s unanswered)" % [reason, id])
	_outbox.clear()
	emit_signal("disconnected", reason)
