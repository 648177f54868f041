# Drives the Godot reference client through one exchange with a running server.
# Usage: godot3-server --no-window -s exchange.gd -- CLIENT_PATH PORT NPC OTHER_NPC QUESTION
# Prints one "RESULT <name> <json>" line per step; exits 1 on the first failure.
extends SceneTree

var sentences_seen := []
var errors_seen := []


func _init() -> void:
	var args = _user_args()
	var code = _run(args[0], int(args[1]), args[2], args[3], args[4])
	# A script error makes `_run` return null instead of stopping Godot: exit anyway.
	quit(code if typeof(code) == TYPE_INT else 1)


func _user_args() -> Array:
	var all = Array(OS.get_cmdline_args())
	var at = all.find("--")
	return all.slice(at + 1, all.size() - 1)


func _report(name: String, value) -> void:
	print("RESULT %s %s" % [name, to_json(value)])


func _fail(step: String, result: Dictionary) -> int:
	printerr("%s failed: %s" % [step, to_json(result)])
	return 1


func _on_sentence(_npc, text, _message) -> void:
	sentences_seen.append(text)


func _on_error(code, message, reply_to) -> void:
	errors_seen.append({"code": code, "message": message, "reply_to": reply_to})


func _run(client_path: String, port: int, npc: String, other: String, question: String) -> int:
	var client = load(client_path).new()
	client.timeout_sec = 20.0
	client.connect("sentence", self, "_on_sentence")
	client.connect("error_received", self, "_on_error")
	# Queued before the welcome arrives: sent right after it.
	client.connect_to_server("127.0.0.1", port, "millbrook", "godot-test",
			{"streaming": false, "sentences": true, "emotions": true, "actions": true})
	var world_id = client.send_world({
		"npc": npc, "location": "The Copper Kettle, common room", "time": "Day 1, evening",
		"actors": [{"id": "godot-player", "name": "Gus", "description": "A wet traveller"}],
		"facts": [],
		"affordances": [{"action": "give_item", "targets": ["godot-player"]}, {"action": "rent_room"}],
	})
	var hello = client.wait_for(client.hello_id)
	if not hello["ok"]:
		return _fail("hello", hello)
	_report("welcome", hello["final"])
	var world = client.wait_for(world_id)
	if not world["ok"]:
		return _fail("world", world)
	_report("world", {"id": world_id, "type": world["type"], "reply_to": world["final"]["reply_to"]})

	var say_id = client.say(npc, question, "godot-player", "Gus")
	var said = client.wait_for(say_id)
	if not said["ok"]:
		return _fail("say", said)
	if sentences_seen != said["sentences"]:
		return _fail("sentence signal", said)
	for action in said["actions"]:
		var done = client.wait_for(client.send_action_result(action["action_id"], true, "done"))
		if not done["ok"]:
			return _fail("action_result", done)
	_report("say", {
		"id": say_id, "type": said["type"], "reply_to": said["final"]["reply_to"],
		"text": said["text"], "sentences": said["sentences"], "emotion": said["emotion"],
		"actions": said["actions"].size(),
	})

	# Two NPCs witness it (one listed twice): one answer each ends the request.
	var event_id = client.send_event("A cart horse neighs outside.",
			{"npc": npc, "witnesses": [npc, other, npc], "react": "never"})
	var event = client.wait_for(event_id)
	if not event["ok"]:
		return _fail("event", event)
	var replies = []
	for msg in event["replies"]:
		replies.append({"type": msg["type"], "npc": msg["npc"], "reply_to": msg["reply_to"],
				"reason": msg.get("reason")})
	_report("event", {"id": event_id, "type": event["type"], "replies": replies})

	var nobody = client.wait_for(client.say("nobody-here", "Hello?"))
	if nobody["ok"]:
		return _fail("unknown npc (expected an error)", nobody)
	_report("unknown_npc", {"code": nobody["error"]["code"], "message": nobody["error"]["message"],
			"reply_to": nobody["final"].get("reply_to", "")})

	var bad_id = "bad-godot-1"
	var bad = client.wait_for(client.send_raw(bad_id,
			to_json({"type": "say", "id": bad_id, "npc": npc, "text": "", "mood": "grumpy"})))
	if bad["ok"]:
		return _fail("bad message (expected an error)", bad)
	_report("bad_message", {"code": bad["error"]["code"], "message": bad["error"]["message"],
			"reply_to": bad["final"].get("reply_to", "")})
	_report("errors_seen", errors_seen)
	client.close()
	return 0
