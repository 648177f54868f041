// Companion chat: talks to the service's OpenAI-compatible API.
// GET /v1/models lists the characters; POST /v1/chat/completions with
// stream=true answers as server-sent events, read here from the fetch body.
// The access key lives in sessionStorage: gone when the tab closes.
"use strict";

(function () {
  const STORE = {
    key: "personae.apiKey",
    user: "personae.user",
    persona: "personae.persona",
  };

  const el = {
    keyForm: document.getElementById("key-form"),
    key: document.getElementById("api-key"),
    user: document.getElementById("user-name"),
    forget: document.getElementById("forget-key"),
    persona: document.getElementById("persona"),
    personaHelp: document.getElementById("persona-help"),
    status: document.getElementById("status"),
    error: document.getElementById("error"),
    log: document.getElementById("log"),
    empty: document.getElementById("empty-log"),
    chatForm: document.getElementById("chat-form"),
    message: document.getElementById("message"),
    send: document.getElementById("send"),
    stop: document.getElementById("stop"),
  };

  // The conversation as sent to the model, per character.
  const histories = new Map();
  let streaming = null;

  function apiKey() {
    return sessionStorage.getItem(STORE.key) || "";
  }

  function say(text) {
    el.status.textContent = text;
  }

  function showError(text) {
    el.error.textContent = text;
    el.error.hidden = !text;
  }

  async function errorText(response) {
    // OpenAI's envelope: {"error": {"message": ...}}; anything else is shown by status.
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) {
        return body.error.message;
      }
    } catch (ignored) {
      // not JSON
    }
    if (response.status === 401) {
      return "That access key was not accepted. Check it and connect again.";
    }
    return "The service answered with an error (" + response.status + "). Please try again.";
  }

  function personaName(option) {
    return option ? option.textContent : "Your companion";
  }

  async function loadPersonas() {
    const key = apiKey();
    if (!key) {
      say("Enter your access key and choose Connect.");
      return;
    }
    say("Connecting…");
    showError("");
    let response;
    try {
      response = await fetch("/v1/models", {
        headers: { Authorization: "Bearer " + key },
      });
    } catch (err) {
      say("");
      showError("The service cannot be reached. Check your connection and try again.");
      return;
    }
    if (!response.ok) {
      say("");
      showError(await errorText(response));
      return;
    }
    const body = await response.json();
    const models = Array.isArray(body.data) ? body.data : [];
    el.persona.replaceChildren();
    for (const model of models) {
      const option = document.createElement("option");
      option.value = model.id;
      option.textContent = model.name || model.id;
      el.persona.append(option);
    }
    const saved = sessionStorage.getItem(STORE.persona);
    if (saved && models.some((m) => m.id === saved)) {
      el.persona.value = saved;
    }
    el.persona.disabled = models.length === 0;
    if (models.length === 0) {
      el.personaHelp.textContent = "No one is available for this key.";
      say("Connected, but no one is available to talk to.");
      return;
    }
    el.personaHelp.textContent = "Choose who you would like to talk to.";
    say(
      "Connected. " + models.length + (models.length === 1 ? " companion" : " companions") +
      " available; talking to " + personaName(el.persona.selectedOptions[0]) + "."
    );
  }

  function addMessage(role, text, name) {
    if (el.empty) {
      el.empty.remove();
      el.empty = null;
    }
    const item = document.createElement("div");
    item.className = "message " + role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = name + ":";
    const content = document.createElement("span");
    content.className = "content";
    content.textContent = text;
    item.append(who, " ", content);
    el.log.append(item);
    el.log.scrollTop = el.log.scrollHeight;
    return content;
  }

  // Parses an SSE stream: events are separated by a blank line; each `data:`
  // line carries one JSON chunk, and `[DONE]` ends the stream.
  async function readEvents(body, onData) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      buffer = buffer.replace(/\r\n?/g, "\n");
      let end = buffer.indexOf("\n\n");
      while (end !== -1) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data === "[DONE]") {
          return;
        }
        if (data) {
          onData(JSON.parse(data));
        }
        end = buffer.indexOf("\n\n");
      }
      if (done) {
        return;
      }
    }
  }

  function setBusy(busy) {
    el.log.setAttribute("aria-busy", busy ? "true" : "false");
    el.send.disabled = busy;
    el.stop.hidden = !busy;
  }

  async function sendMessage(text) {
    const key = apiKey();
    const persona = el.persona.value;
    if (!key || !persona) {
      showError("Connect with your access key and choose who to talk to first.");
      el.key.focus();
      return;
    }
    showError("");
    const history = histories.get(persona) || [];
    histories.set(persona, history);
    history.push({ role: "user", content: text });
    addMessage("user", text, "You");
    const name = personaName(el.persona.selectedOptions[0]);
    const reply = addMessage("assistant", "", name);
    setBusy(true);
    say(name + " is answering…");
    const payload = { model: persona, messages: history, stream: true };
    const user = sessionStorage.getItem(STORE.user);
    if (user) {
      payload.user = user;
    }
    streaming = new AbortController();
    let answer = "";
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: {
          Authorization: "Bearer " + key,
          "Content-Type": "application/json",
          Accept: "text/event-stream",
        },
        body: JSON.stringify(payload),
        signal: streaming.signal,
      });
      if (!response.ok || !response.body) {
        throw new Error(await errorText(response));
      }
      await readEvents(response.body, (chunk) => {
        if (chunk.error) {
          throw new Error(chunk.error.message || "The answer was interrupted.");
        }
        const choice = chunk.choices && chunk.choices[0];
        const delta = choice && choice.delta && choice.delta.content;
        if (delta) {
          answer += delta;
          reply.textContent = answer;
          el.log.scrollTop = el.log.scrollHeight;
        }
      });
      say(name + " answered.");
    } catch (err) {
      if (err && err.name === "AbortError") {
        say("Stopped.");
      } else {
        say("");
        showError(
          err && err.message && !(err instanceof TypeError)
            ? err.message
            : "The service cannot be reached. Check your connection and try again."
        );
      }
    } finally {
      streaming = null;
      if (answer) {
        history.push({ role: "assistant", content: answer });
      } else {
        reply.textContent = "(no answer)";
      }
      setBusy(false);
      el.message.focus();
    }
  }

  el.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = el.key.value.trim();
    if (!key) {
      showError("Enter your access key first.");
      el.key.focus();
      return;
    }
    sessionStorage.setItem(STORE.key, key);
    const user = el.user.value.trim();
    if (user) {
      sessionStorage.setItem(STORE.user, user);
    } else {
      sessionStorage.removeItem(STORE.user);
    }
    loadPersonas();
  });

  el.forget.addEventListener("click", () => {
    sessionStorage.removeItem(STORE.key);
    el.key.value = "";
    el.persona.replaceChildren();
    el.persona.disabled = true;
    histories.clear();
    say("The key is forgotten.");
    el.key.focus();
  });

  el.persona.addEventListener("change", () => {
    sessionStorage.setItem(STORE.persona, el.persona.value);
    say("Talking to " + personaName(el.persona.selectedOptions[0]) + ".");
  });

  el.chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = el.message.value.trim();
    if (!text || streaming) {
      return;
    }
    el.message.value = "";
    sendMessage(text);
  });

  el.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      el.chatForm.requestSubmit();
    }
  });

  el.stop.addEventListener("click", () => {
    if (streaming) {
      streaming.abort();
    }
  });

  el.key.value = apiKey();
  el.user.value = sessionStorage.getItem(STORE.user) || "";
  loadPersonas();
})();
