// openk2 web chat: streams /v1/chat/completions and renders reasoning, content and tool calls.
// Plain browser JavaScript, no build step. Model text is only ever set through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const chat = { messages: [], controller: null };

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function authHeaders() {
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

function errorText(body, status) {
  const message = body && body.error && body.error.message;
  return `Error ${status}: ${message || "request failed"}`;
}

async function loadModels() {
  try {
    const response = await fetch("/v1/models", { headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) {
      setStatus(errorText(body, response.status), true);
      if (response.status === 401) {
        $("settings").open = true; // the key lives in the settings panel
        $("api-key").focus();
      }
      return;
    }
    const select = $("model");
    select.replaceChildren();
    for (const model of body.data) {
      const option = document.createElement("option");
      option.value = option.textContent = model.id;
      select.append(option);
    }
    setStatus(`Ready (${body.data.length} model${body.data.length === 1 ? "" : "s"})`);
  } catch (err) {
    setStatus(`Cannot reach the server: ${err}`, true);
  }
}

function messageView(role) {
  const root = $("message-template").content.firstElementChild.cloneNode(true);
  root.classList.add(role);
  root.querySelector(".role").textContent = role === "user" ? "You" : "openk2";
  $("conversation").append(root);
  return {
    root,
    reasoning: root.querySelector(".reasoning"),
    reasoningText: root.querySelector(".reasoning-text"),
    content: root.querySelector(".content"),
    toolCalls: root.querySelector(".tool-calls"),
    meta: root.querySelector(".meta"),
  };
}

function scrollToEnd() {
  const main = $("conversation");
  main.scrollTop = main.scrollHeight;
}

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function renderToolCalls(view, calls) {
  view.toolCalls.replaceChildren();
  for (const call of calls) {
    const card = document.createElement("div");
    card.className = "tool-call";
    const name = document.createElement("div");
    name.className = "tool-name";
    name.textContent = `${call.function.name}  (${call.id || "call"})`;
    const args = document.createElement("pre");
    args.textContent = prettyJson(call.function.arguments || "");
    card.append(name, args);
    view.toolCalls.append(card);
  }
}

function buildRequest() {
  const body = {
    model: $("model").value,
    messages: chat.messages,
    stream: true,
    stream_options: { include_usage: true },
    thinking: { type: $("thinking").checked ? "enabled" : "disabled" },
  };
  const maxTokens = parseInt($("max-tokens").value, 10);
  if (maxTokens > 0) body.max_tokens = maxTokens;
  const temperature = $("temperature").value;
  if (temperature !== "") body.temperature = Number(temperature);
  const tools = $("tools").value.trim();
  if (tools) {
    try {
      body.tools = JSON.parse(tools);
    } catch (err) {
      throw new Error(`Tools are not valid JSON: ${err.message}`);
    }
    body.tool_choice = $("tool-choice").value;
  }
  return body;
}

async function readEvents(stream, onEvent) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

function applyEvent(event, view, reply) {
  if (event.error) throw new Error(event.error.message);
  if (event.usage) {
    const u = event.usage;
    reply.usage = `${u.prompt_tokens} prompt + ${u.completion_tokens} completion tokens`;
  }
  for (const choice of event.choices || []) {
    const delta = choice.delta || {};
    if (delta.reasoning_content) {
      reply.reasoning_content += delta.reasoning_content;
      view.reasoning.hidden = false;
      if (!reply.content) view.reasoning.open = true;
      view.reasoningText.textContent = reply.reasoning_content;
    }
    if (delta.content) {
      reply.content += delta.content;
      view.reasoning.open = false;
      view.content.textContent = reply.content;
    }
    if (delta.tool_calls) {
      for (const call of delta.tool_calls) reply.tool_calls[call.index] = call;
      renderToolCalls(view, reply.tool_calls.filter(Boolean));
    }
    if (choice.finish_reason) reply.finish_reason = choice.finish_reason;
  }
  scrollToEnd();
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("input").disabled = busy;
}

function historyMessage(reply) {
  const message = { role: "assistant", content: reply.content };
  if (reply.reasoning_content) message.reasoning_content = reply.reasoning_content;
  const calls = reply.tool_calls.filter(Boolean);
  if (calls.length) message.tool_calls = calls;
  return message;
}

async function send(text) {
  chat.messages.push({ role: "user", content: text });
  messageView("user").content.textContent = text;
  const view = messageView("assistant");
  view.root.classList.add("streaming");
  const reply = { content: "", reasoning_content: "", tool_calls: [], finish_reason: null };
  chat.controller = new AbortController();
  setBusy(true);
  setStatus("Generating…");
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: authHeaders(),
      body: JSON.stringify(buildRequest()),
      signal: chat.controller.signal,
    });
    if (!response.ok) {
      throw new Error(errorText(await response.json().catch(() => ({})), response.status));
    }
    await readEvents(response.body, (event) => applyEvent(event, view, reply));
    view.meta.textContent = [reply.finish_reason && `finish: ${reply.finish_reason}`, reply.usage]
      .filter(Boolean).join(" · ");
    setStatus("Done");
  } catch (err) {
    const stopped = err.name === "AbortError";
    view.meta.textContent = stopped ? "stopped" : String(err.message || err);
    view.root.classList.toggle("failed", !stopped);
    setStatus(stopped ? "Stopped" : String(err.message || err), !stopped);
  } finally {
    view.root.classList.remove("streaming");
    chat.messages.push(historyMessage(reply));
    chat.controller = null;
    setBusy(false);
    $("input").focus();
  }
}

function init() {
  $("api-key").value = localStorage.getItem("openk2-api-key") || "";
  $("api-key").addEventListener("change", () => {
    localStorage.setItem("openk2-api-key", $("api-key").value.trim());
    loadModels();
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("input").value.trim();
    if (!text || chat.controller) return;
    $("input").value = "";
    send(text);
  });
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => chat.controller && chat.controller.abort());
  $("new-chat").addEventListener("click", () => {
    if (chat.controller) chat.controller.abort();
    chat.messages = [];
    $("conversation").replaceChildren();
    setStatus("New chat");
  });
  loadModels();
}

init();
