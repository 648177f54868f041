// personae game NPC protocol v1: a reference client for C# (Mono, .NET, Unity).
//
// One file, no packages: System.Net.Sockets for TCP and a small JSON reader and
// writer (the `Json` class below). Speaks JSON lines over TCP to
// `personae game serve PERSONA... --tcp PORT`.
//
//     using Personae.Game;
//     using (var client = PersonaeClient.Connect("127.0.0.1", 7777, "millbrook", "slot-1"))
//     {
//         client.SentenceReceived += (npc, text) => Console.WriteLine(npc + ": " + text);
//         var reply = client.Say("brenna-innkeeper", "Do you have a room?");
//         foreach (var action in reply.Actions)      // carry it out, then say how it went
//             client.SendActionResult(action.ActionId, true, "the key is in the bag");
//     }
//
// Blocking calls (`Connect`, `Say`, `SendEvent`, `SendWorld`, `Request`,
// `WaitFor`) wait for the message that ends their request (`reply`,
// `no_response`, `ack`, `welcome`, `saved`, `loaded` or `error`; an `event`
// gets a `reply` or `no_response` from each witness) and throw
// `PersonaeException` on an `error`, a timeout (code `timeout`), a lost
// connection (code `disconnected`) or a message over 64 KiB (`too_large`). A game loop that must not block calls
// `Send` and then `Poll()` once per frame, and listens to the events
// (`RequestFinished` among them). The client is not thread-safe: use it from
// one thread.

using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net.Sockets;
using System.Text;

namespace Personae.Game
{
    /// <summary>An `error` from the server, or the client's own `timeout` / `disconnected` / `bad_json`.</summary>
    public sealed class PersonaeException : Exception
    {
        public PersonaeException(string code, string message, string replyTo = null)
            : base(code + ": " + message)
        {
            Code = code;
            Detail = message;
            ReplyTo = replyTo;
        }

        /// <summary>Machine-readable kind: `unknown_npc`, `bad_message`, ..., `timeout`, `disconnected`.</summary>
        public string Code { get; private set; }
        /// <summary>What is wrong and how to fix it, as the server wrote it.</summary>
        public string Detail { get; private set; }
        /// <summary>The id of the request that failed, if known.</summary>
        public string ReplyTo { get; private set; }
    }

    /// <summary>A host action an NPC takes; report how it went with `SendActionResult`.</summary>
    public sealed class NpcAction
    {
        public string Npc;
        public string ActionId;
        public string Name;
        public string Target;
        public Dictionary<string, object> Arguments = new Dictionary<string, object>();
    }

    /// <summary>Everything the server sent for one request, ending with `Final`.</summary>
    public sealed class Response
    {
        public string Id;
        /// <summary>Type of the final message: `reply`, `no_response`, `ack`, `welcome`, ...</summary>
        public string Type;
        public Dictionary<string, object> Final;
        public readonly List<Dictionary<string, object>> Messages = new List<Dictionary<string, object>>();
        public readonly List<string> Sentences = new List<string>();
        public readonly List<NpcAction> Actions = new List<NpcAction>();
        public string Emotion;
        /// <summary>The reply's whole text (or the streamed deltas so far).</summary>
        public string Text = "";
        public readonly List<string> Flags = new List<string>();
        /// <summary>Every `reply` and `no_response`: one for a `say`, one per witness for an `event`.</summary>
        public readonly List<Dictionary<string, object>> Replies = new List<Dictionary<string, object>>();
        /// <summary>Why the NPC stayed silent (`cooldown`, `budget`, ...), for `no_response`.</summary>
        public string NoResponseReason;
        public double? RetryAfter;
        /// <summary>Set when the request failed; `Final` is then the `error` message, if any.</summary>
        public PersonaeException Error;
    }

    /// <summary>A connection to a personae game server, after `hello` and `welcome`.</summary>
    public sealed class PersonaeClient : IDisposable
    {
        public const int ProtocolVersion = 1;
        public const string Version = "personae-csharp/1.0";
        /// <summary>Largest line the server accepts; longer messages are refused here.</summary>
        public const int MaxMessageBytes = 64 * 1024;

        static readonly HashSet<string> FinalTypes = new HashSet<string> {
            "reply", "no_response", "ack", "welcome", "saved", "loaded", "error",
        };

        sealed class Pending
        {
            public Response Response;
            public DateTime Deadline;
            public bool Cancellable;
            public int Answers;
        }

        readonly Socket socket;
        readonly Dictionary<string, Pending> pending = new Dictionary<string, Pending>();
        readonly Dictionary<string, Response> finished = new Dictionary<string, Response>();
        readonly byte[] chunk = new byte[8192];
        MemoryStream buffer = new MemoryStream();
        int nextId;
        bool closed;

        /// <summary>How long a request may wait for its final message (default 30 s).</summary>
        public TimeSpan Timeout = TimeSpan.FromSeconds(30);
        /// <summary>The `welcome` message.</summary>
        public Dictionary<string, object> Welcome { get; private set; }
        /// <summary>Persona ids of the NPCs the server hosts.</summary>
        public List<string> Npcs { get; private set; }

        /// <summary>Every message received, before it is routed.</summary>
        public event Action<Dictionary<string, object>> MessageReceived;
        /// <summary>A finished sentence: (npc, text), ready for subtitles or TTS.</summary>
        public event Action<string, string> SentenceReceived;
        /// <summary>Streamed text: (npc, text); only with the `streaming` capability.</summary>
        public event Action<string, string> DeltaReceived;
        /// <summary>An action for the game to carry out.</summary>
        public event Action<NpcAction> ActionRequested;
        /// <summary>The emotion an NPC shows: (npc, emotion).</summary>
        public event Action<string, string> EmotionChanged;
        /// <summary>An `error` message: (code, message, reply_to or null).</summary>
        public event Action<string, string, string> ErrorReceived;
        /// <summary>A request ended (its `Error` is set when it failed).</summary>
        public event Action<Response> RequestFinished;

        PersonaeClient(Socket socket)
        {
            this.socket = socket;
            Npcs = new List<string>();
        }

        /// <summary>Open a TCP connection, send `hello` and wait for `welcome`.</summary>
        /// <exception cref="PersonaeException">The server is unreachable or refused the hello.</exception>
        public static PersonaeClient Connect(string host, int port, string world = "default",
            string slot = "default", Dictionary<string, object> capabilities = null,
            TimeSpan? timeout = null)
        {
            var sock = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            sock.NoDelay = true;
            try
            {
                IAsyncResult attempt = sock.BeginConnect(host, port, null, null);
                if (!attempt.AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(5)))
                    throw new SocketException((int)SocketError.TimedOut);
                sock.EndConnect(attempt);
            }
            catch (SocketException exc)
            {
                sock.Close();
                throw new PersonaeException("disconnected", string.Format(
                    "could not connect to {0}:{1} ({2}); is `personae game serve ... --tcp {1}` running?",
                    host, port, exc.Message));
            }
            var client = new PersonaeClient(sock);
            if (timeout.HasValue) client.Timeout = timeout.Value;
            try
            {
                var welcome = client.Request(new Dictionary<string, object> {
                    { "type", "hello" }, { "protocol", ProtocolVersion }, { "client", Version },
                    { "world", world }, { "slot", slot },
                    { "capabilities", capabilities ?? new Dictionary<string, object>() },
                });
                client.Welcome = welcome.Final;
                object npcs;
                if (welcome.Final.TryGetValue("npcs", out npcs) && npcs is List<object>)
                    foreach (var npc in (List<object>)npcs) client.Npcs.Add((string)npc);
            }
            catch
            {
                client.Dispose();
                throw;
            }
            return client;
        }

        /// <summary>A player speaks to an NPC; waits for `reply` or `no_response`.</summary>
        public Response Say(string npc, string text, string playerId = "player", string playerName = "Player")
        {
            return Request(new Dictionary<string, object> {
                { "type", "say" }, { "npc", npc }, { "text", text },
                { "player", new Dictionary<string, object> { { "id", playerId }, { "name", playerName } } },
            });
        }

        /// <summary>Something happened (fields: npc, actor, witnesses, react); waits for each witness.</summary>
        public Response SendEvent(string description, Dictionary<string, object> fields = null)
        {
            var msg = Copy(fields);
            msg["type"] = "event";
            msg["description"] = description;
            return Request(msg);
        }

        /// <summary>What NPCs perceive and may do (location, time, actors, facts, affordances, ...).</summary>
        public Response SendWorld(Dictionary<string, object> fields)
        {
            var msg = Copy(fields);
            msg["type"] = "world";
            return Request(msg);
        }

        /// <summary>Whether an action the NPC asked for worked; waits for the `ack`.</summary>
        public Response SendActionResult(string actionId, bool ok, string detail = "")
        {
            return Request(new Dictionary<string, object> {
                { "type", "action_result" }, { "action_id", actionId }, { "ok", ok }, { "detail", detail },
            });
        }

        /// <summary>Ask the server to stop answering a `say` or `event` (does not wait).</summary>
        public string Cancel(string target)
        {
            return Send(new Dictionary<string, object> { { "type", "cancel" }, { "target", target } });
        }

        /// <summary>Send a message and wait for its final message.</summary>
        /// <exception cref="PersonaeException">An `error` answered it, it timed out, or the connection dropped.</exception>
        public Response Request(Dictionary<string, object> message)
        {
            return WaitFor(Send(message));
        }

        /// <summary>Send a message without waiting (an `id` is added when missing); returns its id.</summary>
        public string Send(Dictionary<string, object> message)
        {
            var msg = Copy(message);
            if (!msg.ContainsKey("id"))
            {
                object kind;
                msg.TryGetValue("type", out kind);
                msg["id"] = (kind ?? "msg") + "-" + (++nextId).ToString(CultureInfo.InvariantCulture);
            }
            var id = (string)msg["id"];
            var type = msg.ContainsKey("type") ? msg["type"] as string : null;
            return Transmit(id, Json.Write(msg), type == "say" || type == "event", CountAnswers(msg));
        }

        /// <summary>Send one raw line as request `id` (for tools and tests); returns `id`.</summary>
        public string SendRaw(string id, string line)
        {
            return Transmit(id, line, false, 1);
        }

        // How many `reply`/`no_response` messages end a request: one per distinct
        // witness of an event, else one.
        static int CountAnswers(Dictionary<string, object> msg)
        {
            object witnesses;
            if (!"event".Equals(Get(msg, "type")) || !msg.TryGetValue("witnesses", out witnesses)
                || !(witnesses is IEnumerable) || witnesses is string)
                return 1;
            var distinct = new HashSet<object>();
            foreach (var witness in (IEnumerable)witnesses) distinct.Add(witness);
            return Math.Max(1, distinct.Count);
        }

        string Transmit(string id, string line, bool cancellable, int answers)
        {
            var entry = new Pending {
                Response = new Response { Id = id },
                Deadline = DateTime.UtcNow + Timeout,
                Cancellable = cancellable,
                Answers = answers,
            };
            pending[id] = entry;
            if (closed)
            {
                Finish(id, new PersonaeException("disconnected", "the connection is closed; connect again", id));
                return id;
            }
            var data = Encoding.UTF8.GetBytes(line + "\n");
            if (data.Length > MaxMessageBytes)
            {
                Finish(id, new PersonaeException("too_large", string.Format(
                    "message {0} is {1} bytes; the server accepts at most {2}, so shorten its text",
                    id, data.Length, MaxMessageBytes), id));
                return id;
            }
            try
            {
                socket.Send(data);
            }
            catch (Exception exc)
            {
                if (!(exc is SocketException || exc is ObjectDisposedException)) throw;
                Lost("sending failed: " + exc.Message);
            }
            return id;
        }

        /// <summary>Block until request `id` ends; returns its response.</summary>
        /// <exception cref="PersonaeException">The request failed.</exception>
        public Response WaitFor(string id, TimeSpan? timeout = null)
        {
            Pending entry;
            if (timeout.HasValue && pending.TryGetValue(id, out entry))
                entry.Deadline = DateTime.UtcNow + timeout.Value;
            while (pending.ContainsKey(id))
                Read(50);
            Response response;
            if (!finished.TryGetValue(id, out response))
                throw new PersonaeException("timeout", "no request " + id + " is known to this client", id);
            finished.Remove(id);
            if (response.Error != null) throw response.Error;
            return response;
        }

        /// <summary>Whether request `id` still waits for its final message.</summary>
        public bool IsPending(string id)
        {
            return pending.ContainsKey(id);
        }

        /// <summary>Handle what has arrived without blocking; call once per frame.</summary>
        public void Poll()
        {
            Read(0);
        }

        public void Dispose()
        {
            Lost("closed by the client");
        }

        static Dictionary<string, object> Copy(Dictionary<string, object> fields)
        {
            return fields == null ? new Dictionary<string, object>() : new Dictionary<string, object>(fields);
        }

        void Read(int waitMilliseconds)
        {
            if (!closed)
            {
                try
                {
                    bool first = true;
                    while (socket.Poll(first ? waitMilliseconds * 1000 : 0, SelectMode.SelectRead))
                    {
                        first = false;
                        int n = socket.Receive(chunk);
                        if (n == 0)
                        {
                            Lost("the server closed the connection");
                            break;
                        }
                        buffer.Write(chunk, 0, n);
                        SplitLines();
                    }
                }
                catch (SocketException exc)
                {
                    Lost("reading failed: " + exc.Message);
                }
            }
            Expire();
        }

        void SplitLines()
        {
            byte[] data = buffer.ToArray();
            int start = 0;
            for (int i = 0; i < data.Length; i++)
            {
                if (data[i] != (byte)'\n') continue;
                if (i > start) HandleLine(Encoding.UTF8.GetString(data, start, i - start));
                start = i + 1;
            }
            buffer = new MemoryStream();
            buffer.Write(data, start, data.Length - start);
        }

        void HandleLine(string line)
        {
            Dictionary<string, object> msg;
            try
            {
                msg = Json.Parse(line) as Dictionary<string, object>;
            }
            catch (FormatException exc)
            {
                msg = null;
                line = exc.Message + ": " + line;
            }
            if (msg == null || !(Get(msg, "type") is string))
            {
                if (ErrorReceived != null)
                    ErrorReceived("bad_json", "the server sent a line that is not a protocol message: " + line, null);
                return;
            }
            Dispatch(msg);
        }

        static object Get(Dictionary<string, object> msg, string key)
        {
            object value;
            return msg.TryGetValue(key, out value) ? value : null;
        }

        static string GetString(Dictionary<string, object> msg, string key)
        {
            return Get(msg, key) as string;
        }

        void Dispatch(Dictionary<string, object> msg)
        {
            if (MessageReceived != null) MessageReceived(msg);
            string type = GetString(msg, "type");
            string npc = GetString(msg, "npc");
            string replyTo = GetString(msg, "reply_to");
            Pending entry = null;
            if (replyTo != null) pending.TryGetValue(replyTo, out entry);
            Response response = entry != null ? entry.Response : null;
            if (response != null) response.Messages.Add(msg);
            switch (type)
            {
                case "sentence":
                    if (response != null) response.Sentences.Add(GetString(msg, "text"));
                    if (SentenceReceived != null) SentenceReceived(npc, GetString(msg, "text"));
                    break;
                case "delta":
                    if (response != null) response.Text += GetString(msg, "text");
                    if (DeltaReceived != null) DeltaReceived(npc, GetString(msg, "text"));
                    break;
                case "action":
                    var action = new NpcAction {
                        Npc = npc, ActionId = GetString(msg, "action_id"), Name = GetString(msg, "name"),
                        Target = GetString(msg, "target"),
                        Arguments = Get(msg, "arguments") as Dictionary<string, object>
                            ?? new Dictionary<string, object>(),
                    };
                    if (response != null) response.Actions.Add(action);
                    if (ActionRequested != null) ActionRequested(action);
                    break;
                case "emotion":
                    if (response != null) response.Emotion = GetString(msg, "emotion");
                    if (EmotionChanged != null) EmotionChanged(npc, GetString(msg, "emotion"));
                    break;
                case "error":
                    if (ErrorReceived != null)
                        ErrorReceived(GetString(msg, "code"), GetString(msg, "message"), replyTo);
                    break;
            }
            if (response == null || !FinalTypes.Contains(type)) return;
            response.Final = msg;
            response.Type = type;
            if (type == "reply")
            {
                response.Text = GetString(msg, "text") ?? "";
                response.Emotion = GetString(msg, "emotion") ?? response.Emotion;
                var flags = Get(msg, "flags") as List<object>;
                if (flags != null) foreach (var flag in flags) response.Flags.Add((string)flag);
            }
            else if (type == "no_response")
            {
                response.NoResponseReason = GetString(msg, "reason");
                var retry = Get(msg, "retry_after");
                if (retry != null) response.RetryAfter = Convert.ToDouble(retry, CultureInfo.InvariantCulture);
            }
            if (type == "reply" || type == "no_response")
            {
                response.Replies.Add(msg);
                // Other witnesses of an event still to answer.
                if (--entry.Answers > 0) return;
            }
            PersonaeException error = null;
            if (type == "error")
                error = new PersonaeException(GetString(msg, "code") ?? "internal", GetString(msg, "message") ?? "", replyTo);
            Finish(replyTo, error);
        }

        void Finish(string id, PersonaeException error)
        {
            Pending entry;
            if (!pending.TryGetValue(id, out entry)) return;
            pending.Remove(id);
            entry.Response.Error = error;
            // Kept for WaitFor; a game that only listens to RequestFinished never collects
            // them, so the oldest are dropped past a bound.
            if (finished.Count >= 64)
            {
                var enumerator = finished.Keys.GetEnumerator();
                enumerator.MoveNext();
                finished.Remove(enumerator.Current);
            }
            finished[id] = entry.Response;
            if (RequestFinished != null) RequestFinished(entry.Response);
        }

        void Expire()
        {
            var now = DateTime.UtcNow;
            var late = new List<string>();
            foreach (var item in pending)
                if (now >= item.Value.Deadline) late.Add(item.Key);
            foreach (var id in late)
            {
                Pending entry;
                if (!pending.TryGetValue(id, out entry)) continue;
                // The NPC should stop working on an answer nobody waits for.
                if (entry.Cancellable && !closed)
                {
                    var cancelId = "cancel-" + (++nextId).ToString(CultureInfo.InvariantCulture);
                    SendRaw(cancelId, Json.Write(new Dictionary<string, object> {
                        { "type", "cancel" }, { "id", cancelId }, { "target", id },
                    }));
                    pending.Remove(cancelId);
                }
                Finish(id, new PersonaeException("timeout", string.Format(
                    "no answer to {0} within the timeout; raise Timeout or check the server", id), id));
            }
        }

        void Lost(string reason)
        {
            if (closed) return;
            closed = true;
            try { socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
            socket.Close();
            foreach (var id in new List<string>(pending.Keys))
                Finish(id, new PersonaeException("disconnected", reason + " (" + id + " unanswered)", id));
        }
    }

    /// <summary>
    /// A small JSON reader and writer, enough for the protocol: objects become
    /// Dictionary&lt;string, object&gt;, arrays List&lt;object&gt;, numbers long
    /// (no fraction or exponent) or double, plus string, bool and null.
    /// Written here so the client needs no package.
    /// </summary>
    public static class Json
    {
        const int MaxDepth = 64;

        /// <summary>Parse one JSON value.</summary>
        /// <exception cref="FormatException">The text is not JSON; the message gives the offset.</exception>
        public static object Parse(string text)
        {
            int at = 0;
            object value = ParseValue(text, ref at, 0);
            SkipSpace(text, ref at);
            if (at != text.Length) throw Bad(text, at, "unexpected text after the value");
            return value;
        }

        /// <summary>Write a value (dictionaries, lists, strings, numbers, bools, null) as JSON.</summary>
        /// <exception cref="ArgumentException">The value has no JSON form (NaN, or an unknown type).</exception>
        public static string Write(object value)
        {
            var sb = new StringBuilder();
            WriteValue(sb, value);
            return sb.ToString();
        }

        static FormatException Bad(string text, int at, string problem)
        {
            return new FormatException(string.Format("invalid JSON at offset {0}: {1}", at, problem));
        }

        static void SkipSpace(string text, ref int at)
        {
            while (at < text.Length && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r'))
                at++;
        }

        static object ParseValue(string text, ref int at, int depth)
        {
            if (depth > MaxDepth) throw Bad(text, at, "nested too deeply");
            SkipSpace(text, ref at);
            if (at >= text.Length) throw Bad(text, at, "unexpected end");
            char c = text[at];
            if (c == '{') return ParseObject(text, ref at, depth);
            if (c == '[') return ParseArray(text, ref at, depth);
            if (c == '"') return ParseString(text, ref at);
            if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(text, ref at);
            if (Literal(text, ref at, "true")) return true;
            if (Literal(text, ref at, "false")) return false;
            if (Literal(text, ref at, "null")) return null;
            throw Bad(text, at, "unexpected character '" + c + "'");
        }

        static bool Literal(string text, ref int at, string word)
        {
            if (string.CompareOrdinal(text, at, word, 0, word.Length) != 0) return false;
            at += word.Length;
            return true;
        }

        static Dictionary<string, object> ParseObject(string text, ref int at, int depth)
        {
            var result = new Dictionary<string, object>();
            at++;
            SkipSpace(text, ref at);
            if (at < text.Length && text[at] == '}') { at++; return result; }
            while (true)
            {
                SkipSpace(text, ref at);
                if (at >= text.Length || text[at] != '"') throw Bad(text, at, "expected a string key");
                string key = ParseString(text, ref at);
                SkipSpace(text, ref at);
                if (at >= text.Length || text[at] != ':') throw Bad(text, at, "expected ':'");
                at++;
                result[key] = ParseValue(text, ref at, depth + 1);
                SkipSpace(text, ref at);
                if (at < text.Length && text[at] == ',') { at++; continue; }
                if (at < text.Length && text[at] == '}') { at++; return result; }
                throw Bad(text, at, "expected ',' or '}'");
            }
        }

        static List<object> ParseArray(string text, ref int at, int depth)
        {
            var result = new List<object>();
            at++;
            SkipSpace(text, ref at);
            if (at < text.Length && text[at] == ']') { at++; return result; }
            while (true)
            {
                result.Add(ParseValue(text, ref at, depth + 1));
                SkipSpace(text, ref at);
                if (at < text.Length && text[at] == ',') { at++; continue; }
                if (at < text.Length && text[at] == ']') { at++; return result; }
                throw Bad(text, at, "expected ',' or ']'");
            }
        }

        static string ParseString(string text, ref int at)
        {
            var sb = new StringBuilder();
            at++;
            while (at < text.Length)
            {
                char c = text[at++];
                if (c == '"') return sb.ToString();
                if (c < ' ') throw Bad(text, at - 1, "control character in a string");
                if (c != '\\') { sb.Append(c); continue; }
                if (at >= text.Length) break;
                char e = text[at++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        int code;
                        if (at + 4 > text.Length || !int.TryParse(text.Substring(at, 4), NumberStyles.AllowHexSpecifier,
                                CultureInfo.InvariantCulture, out code))
                            throw Bad(text, at, "bad \\u escape");
                        // Surrogate pairs come as two escapes; C# strings hold them as two chars.
                        sb.Append((char)code);
                        at += 4;
                        break;
                    default:
                        throw Bad(text, at - 1, "bad escape '\\" + e + "'");
                }
            }
            throw Bad(text, at, "unterminated string");
        }

        static object ParseNumber(string text, ref int at)
        {
            int start = at;
            bool integral = true;
            if (text[at] == '-') at++;
            while (at < text.Length)
            {
                char c = text[at];
                if (c >= '0' && c <= '9') { at++; continue; }
                if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { integral = false; at++; continue; }
                break;
            }
            string token = text.Substring(start, at - start);
            long whole;
            if (integral && long.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out whole))
                return whole;
            double real;
            if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out real))
                return real;
            throw Bad(text, start, "bad number '" + token + "'");
        }

        static void WriteValue(StringBuilder sb, object value)
        {
            if (value == null) { sb.Append("null"); return; }
            var s = value as string;
            if (s != null) { WriteString(sb, s); return; }
            if (value is bool) { sb.Append((bool)value ? "true" : "false"); return; }
            if (value is int || value is long || value is short || value is byte || value is uint || value is ulong)
            {
                sb.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
                return;
            }
            if (value is double || value is float || value is decimal)
            {
                double d = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                if (double.IsNaN(d) || double.IsInfinity(d))
                    throw new ArgumentException("JSON has no form for " + d);
                sb.Append(d.ToString("R", CultureInfo.InvariantCulture));
                return;
            }
            var map = value as IDictionary;
            if (map != null)
            {
                sb.Append('{');
                bool first = true;
                foreach (DictionaryEntry item in map)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, Convert.ToString(item.Key, CultureInfo.InvariantCulture));
                    sb.Append(':');
                    WriteValue(sb, item.Value);
                }
                sb.Append('}');
                return;
            }
            var list = value as IEnumerable;
            if (list != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (var item in list)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteValue(sb, item);
                }
                sb.Append(']');
                return;
            }
            throw new ArgumentException("JSON has no form for a " + value.GetType().Name);
        }

        static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < ' ') sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }
    }
}
