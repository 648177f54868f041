// Drives the C# reference client through one exchange with a running server.
// Usage: mono exchange.exe PORT NPC OTHER_NPC QUESTION
// Prints one "RESULT <name> <json>" line per step; exits 1 on the first failure.

using System;
using System.Collections.Generic;
using Personae.Game;

static class Exchange
{
    static void Report(string name, object value)
    {
        Console.WriteLine("RESULT " + name + " " + Json.Write(value));
    }

    static int Main(string[] args)
    {
        int port = int.Parse(args[0]);
        string npc = args[1], other = args[2], question = args[3];
        try
        {
            using (var client = PersonaeClient.Connect("127.0.0.1", port, "millbrook", "csharp-test",
                new Dictionary<string, object> { { "streaming", false }, { "actions", true } },
                TimeSpan.FromSeconds(20)))
            {
                Report("welcome", client.Welcome);
                var streamed = new List<string>();
                client.SentenceReceived += (who, text) => streamed.Add(text);

                var world = client.SendWorld(new Dictionary<string, object> {
                    { "npc", npc }, { "location", "The Copper Kettle, common room" },
                    { "actors", new List<object> {
                        new Dictionary<string, object> { { "id", "cs-player" }, { "name", "Cass" } } } },
                    { "facts", new List<object>() },
                    { "affordances", new List<object> {
                        new Dictionary<string, object> { { "action", "give_item" }, { "targets", new[] { "cs-player" } } } } },
                });
                Report("world", new Dictionary<string, object> {
                    { "id", world.Id }, { "type", world.Type }, { "reply_to", world.Final["reply_to"] } });

                var said = client.Say(npc, question, "cs-player", "Cass");
                if (streamed.Count != said.Sentences.Count)
                    throw new Exception("SentenceReceived saw " + streamed.Count + " sentences, the response " + said.Sentences.Count);
                foreach (var action in said.Actions)
                    client.SendActionResult(action.ActionId, true, "done");
                Report("say", new Dictionary<string, object> {
                    { "id", said.Id }, { "type", said.Type }, { "reply_to", said.Final["reply_to"] },
                    { "text", said.Text }, { "sentences", said.Sentences }, { "emotion", said.Emotion },
                    { "actions", said.Actions.Count },
                });

                // Two NPCs witness it (one listed twice): one answer each ends the request.
                var heard = client.SendEvent("A cart horse neighs outside.", new Dictionary<string, object> {
                    { "npc", npc }, { "witnesses", new[] { npc, other, npc } }, { "react", "never" } });
                var replies = new List<object>();
                foreach (var reply in heard.Replies)
                    replies.Add(new Dictionary<string, object> {
                        { "type", reply["type"] }, { "npc", reply["npc"] }, { "reply_to", reply["reply_to"] },
                        { "reason", reply.ContainsKey("reason") ? reply["reason"] : null } });
                Report("event", new Dictionary<string, object> {
                    { "id", heard.Id }, { "type", heard.Type }, { "replies", replies } });

                try
                {
                    client.SendActionResult("no-such-action", true);
                    throw new Exception("expected an error for an unknown action id");
                }
                catch (PersonaeException exc)
                {
                    Report("unknown_action", new Dictionary<string, object> {
                        { "code", exc.Code }, { "message", exc.Detail }, { "reply_to", exc.ReplyTo } });
                }

                try
                {
                    var nobody = client.Say("nobody-here", "Hello?");
                    throw new Exception("expected an error for an unknown NPC, got " + nobody.Type);
                }
                catch (PersonaeException exc)
                {
                    Report("unknown_npc", new Dictionary<string, object> {
                        { "code", exc.Code }, { "message", exc.Detail }, { "reply_to", exc.ReplyTo } });
                }
            }
            return 0;
        }
        catch (Exception exc)
        {
            Console.Error.WriteLine("failed: " + exc);
            return 1;
        }
    }
}
