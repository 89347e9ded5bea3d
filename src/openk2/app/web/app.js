// openk2 web app: conversations, the three modes (chat over /v1, tools and agent over /app),
// streaming, stop, regenerate, edit-and-resend. Plain browser JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = { info: null, list: [], conv: null, controller: null, runId: null, drawQueued: null };

// ---- server access -------------------------------------------------------------------

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = `Bearer ${key}`; // the key travels in a header, never a URL
  return h;
}

async function errorOf(response) {
  const body = await response.json().catch(() => ({}));
  const detail = body.error ? body.error.message : JSON.stringify(body.detail || body);
  return new Error(`Error ${response.status}: ${detail || "request failed"}`);
}

async function post(path, body, signal) {
  const response = await fetch(path, { method: "POST", headers: headers(),
                                       body: JSON.stringify(body), signal });
  if (!response.ok) throw await errorOf(response);
  return response;
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

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

// ---- the empty state ---------------------------------------------------------------------

async function loadInfo() {
  try {
    const response = await fetch("/app/info", { headers: headers() });
    if (response.status === 401) {
      setStatus("This server needs an API key: enter it under Settings.", true);
      $("settings").open = true;
      $("api-key").focus();
      return;
    }
    if (!response.ok) throw await errorOf(response);
    ui.info = await response.json();
    showInfo(ui.info);
    setStatus("Ready");
  } catch (err) {
    setStatus(`Cannot reach the server: ${err.message || err}`, true);
  }
}

function formatParams(n) {
  if (!n) return "";
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : `${(n / 1e6).toFixed(1)}M`;
}

function showInfo(info) {
  const size = formatParams(info.parameters);
  $("model-name").textContent = info.model;
  $("empty-title").textContent = `Chat with ${info.model}`;
  $("empty-model").textContent = [size && `${size} parameters`,
    `${info.max_model_len} tokens of context`].filter(Boolean).join(" · ");
  $("empty-purpose").textContent = info.purpose || "";
  $("empty-tools").textContent = info.tools.length
    ? `Tools mode: the server runs ${info.tools.join(", ")} on its workspace` +
      (info.workspace_files.length ? ` (files: ${info.workspace_files.join(", ")})` : "") + "."
    : "This server runs no tools (start it with --tools workspace=DIR to enable them).";
  $("mode-tools").disabled = !info.tools.length;
  $("mode-tools-label").classList.toggle("disabled", !info.tools.length);
  if (info.tools.length && info.embedded) setMode("tools");
  showAttach(info);
  const examples = $("examples");
  examples.replaceChildren(...info.examples.map(exampleButton));
}

function showAttach(info) {
  const attach = $("attach");
  attach.disabled = !info.images;
  attach.title = info.images
    ? "Attach an image or a video (or drop one on the message box); sent in Chat mode"
    : `${info.model} reads text only (it has no vision tower), so it cannot take images or ` +
      "video; serve a multimodal checkpoint to attach them";
  Media.setEnabled(Boolean(info.images), () => Media.drawPending($("attachments")));
}

async function attachFiles(files) {
  if (!ui.info || !ui.info.images) {
    setStatus(`${ui.info ? ui.info.model : "This model"} reads text only; it cannot take images.`, true);
    return;
  }
  const refused = await Media.add([...files]);
  if (refused.length) setStatus(`Not an image or a video: ${refused.join(", ")}`, true);
  else setStatus(`${Media.count} attachment${Media.count === 1 ? "" : "s"} ready`);
}

function exampleButton(example) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "example";
  button.innerHTML = `<span class="badge"></span> <span class="text"></span>`;
  button.querySelector(".badge").textContent = example.mode;
  button.querySelector(".text").textContent = example.text;
  button.addEventListener("click", () => {
    setMode(example.mode);
    submitText(example.text);
  });
  return button;
}

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function setMode(value) {
  const radio = document.querySelector(`input[name="mode"][value="${value}"]`);
  if (radio && !radio.disabled) radio.checked = true;
}

// ---- conversations -----------------------------------------------------------------------

function persist() {
  ui.conv.title = Store.titleOf(ui.conv);
  ui.conv.updated = Date.now();
  if (!ui.list.includes(ui.conv)) ui.list.unshift(ui.conv);
  if (!Store.save(ui.list)) setStatus("The browser's storage is full; this chat is not saved.", true);
  renderList();
}

function renderList() {
  const items = ui.list.filter((c) => c.items.length)
    .sort((a, b) => b.updated - a.updated).map((conv) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "conv" + (conv === ui.conv ? " current" : "");
      button.textContent = conv.title;
      if (conv === ui.conv) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => openConversation(conv));
      const del = document.createElement("button");
      del.type = "button";
      del.className = "icon delete";
      del.textContent = "×";
      del.setAttribute("aria-label", `Delete conversation ${conv.title}`);
      del.addEventListener("click", () => deleteConversation(conv));
      li.append(button, del);
      return li;
    });
  $("conversations").replaceChildren(...items);
}

function openConversation(conv) {
  if (ui.controller) stop();
  ui.conv = conv;
  localStorage.setItem("openk2-current", conv.id);
  renderConversation();
  renderList();
  toggleSidebar(false);
  const running = conv.items.find((i) => i.kind === "agent" && !finished(i) && i.run_id);
  if (running) reattach(running);
}

function deleteConversation(conv) {
  ui.list = ui.list.filter((c) => c !== conv);
  Store.save(ui.list);
  if (conv === ui.conv) openConversation(Store.create());
  renderList();
}

function renderConversation() {
  const main = $("conversation");
  for (const node of [...main.children]) if (node.id !== "empty") node.remove();
  $("empty").hidden = ui.conv.items.length > 0;
  ui.conv.items.forEach((item, index) => drawItem(item, index));
  main.scrollTop = main.scrollHeight;
}

function drawItem(item, index) {
  const main = $("conversation");
  if (item.kind === "user") {
    const view = Render.messageView(main, "user", "You");
    view.content.textContent = item.text;
    if (item.media && item.media.length) Media.drawSent(view.root.querySelector(".content"), item.media);
    Render.actionButton(view, "Edit", () => editMessage(view, index), "Edit and resend");
    return view;
  }
  const view = Render.messageView(main, "assistant", item.kind === "agent" ? "openk2 · agent" : "openk2");
  if (item.kind === "agent") Agent.draw(view, item);
  else Render.assistant(view, item);
  item.view = view;
  if (index === ui.conv.items.length - 1) addReplyActions(view, item);
  return view;
}

function addReplyActions(view, item) {
  Render.actionButton(view, "Regenerate", regenerate, "Regenerate the last answer");
  if (item.kind === "agent" && !finished(item) && item.run_id) {
    Render.actionButton(view, "Resume", () => resumeRun(item), "Resume the agent run");
  }
}

function finished(item) {
  return Boolean(item.final) || item.state === "error";
}

// ---- sending -----------------------------------------------------------------------------

function submitText(text, kept = null) {
  if (!text || ui.controller) return;
  if ((Media.count || (kept && kept.length)) && mode() !== "chat") {
    setStatus("Images and videos go to the model in Chat mode; switch to Chat to send them.", true);
    return;
  }
  const media = kept || Media.take();
  Media.drawPending($("attachments"));
  ui.conv.items.push(media.length ? { kind: "user", text, media } : { kind: "user", text });
  reply();
}

function reply() {
  const m = mode();
  const item = m === "agent" ? Agent.newItem(lastUser().text)
    : { kind: "assistant", mode: m, content: "", reasoning: "", tools: [], messages: [] };
  ui.conv.items.push(item);
  persist();
  renderConversation();
  const run = m === "agent" ? runAgent : m === "tools" ? runTools : runChat;
  guarded(item, () => run(item));
}

function lastUser() {
  return [...ui.conv.items].reverse().find((i) => i.kind === "user");
}

async function guarded(item, work) {
  ui.controller = new AbortController();
  setBusy(true, item);
  setStatus(item.kind === "agent" ? "Agents working…" : "Generating…");
  try {
    await work();
    setStatus("Done");
  } catch (err) {
    const stopped = err.name === "AbortError";
    item.meta = stopped ? "stopped" : String(err.message || err);
    item.failed = !stopped;
    if (item.kind === "agent" && !stopped) item.error = item.error || item.meta;
    setStatus(stopped ? "Stopped" : item.meta, !stopped);
  } finally {
    ui.controller = null;
    ui.runId = null;
    setBusy(false, item);
    persist();
    renderConversation();
    $("input").focus();
  }
}

function setBusy(busy, item) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("input").disabled = busy;
  if (item && item.view) item.view.root.classList.toggle("streaming", busy);
}

function redraw(item) {
  if (ui.drawQueued) return; // one redraw per frame, however fast the tokens come
  ui.drawQueued = requestAnimationFrame(() => {
    ui.drawQueued = null;
    if (!item.view) return;
    if (item.kind === "agent") Agent.draw(item.view, item);
    else Render.assistant(item.view, item);
    const main = $("conversation");
    main.scrollTop = main.scrollHeight;
  });
}

function generation() {
  const body = { thinking: $("thinking").checked };
  const maxTokens = parseInt($("max-tokens").value, 10);
  if (maxTokens > 0) body.max_tokens = maxTokens;
  const temperature = $("temperature").value;
  if (temperature !== "") body.temperature = Number(temperature);
  return body;
}

function history(upto) {
  const out = [];
  for (const item of ui.conv.items.slice(0, upto)) {
    if (item.kind === "user") out.push({ role: "user", content: Media.contentOf(item.text, item.media) });
    else if (item.kind === "assistant" && item.mode === "tools" && mode() === "tools"
             && item.messages.length) out.push(...item.messages);
    else if (item.kind === "assistant") out.push({ role: "assistant", content: item.content || "" });
    else if (item.kind === "agent" && item.final) out.push({ role: "assistant", content: item.final.answer });
  }
  return out;
}

async function runChat(item) {
  const g = generation();
  const body = { model: ui.info ? ui.info.model : "", messages: history(ui.conv.items.length - 1),
                 stream: true, stream_options: { include_usage: true },
                 thinking: { type: g.thinking ? "enabled" : "disabled" } };
  if (g.max_tokens) body.max_tokens = g.max_tokens;
  if (g.temperature !== undefined) body.temperature = g.temperature;
  const response = await post("/v1/chat/completions", body, ui.controller.signal);
  let finish = null;
  let usage = "";
  await readEvents(response.body, (ev) => {
    if (ev.error) throw new Error(ev.error.message);
    if (ev.usage) usage = `${ev.usage.prompt_tokens} prompt + ${ev.usage.completion_tokens} completion tokens`;
    for (const choice of ev.choices || []) {
      const d = choice.delta || {};
      if (d.reasoning_content) item.reasoning += d.reasoning_content;
      if (d.content) item.content += d.content;
      for (const call of d.tool_calls || []) {
        item.tools[call.index] = { id: call.id, name: call.function.name,
                                   arguments: call.function.arguments, output: "(not run in chat mode)" };
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    redraw(item);
  });
  item.meta = [finish && `finish: ${finish}`, usage].filter(Boolean).join(" · ");
}

async function runTools(item) {
  const body = { messages: history(ui.conv.items.length - 1), ...generation() };
  const response = await post("/app/chat", body, ui.controller.signal);
  await readEvents(response.body, (ev) => applyToolEvent(item, ev));
}

function applyToolEvent(item, ev) {
  if (ev.type === "delta" && ev.kind === "text") item.content += ev.text;
  else if (ev.type === "delta") item.reasoning += ev.text;
  else if (ev.type === "step") item.content = ""; // a new model call: the answer starts over
  else if (ev.type === "tool_call") item.tools.push({ id: ev.id, name: ev.name, arguments: ev.arguments });
  else if (ev.type === "tool_result") {
    const call = item.tools.find((c) => c.id === ev.id && c.output == null);
    if (call) Object.assign(call, { output: ev.output, ok: ev.ok });
  } else if (ev.type === "done") {
    item.messages = ev.messages;
    item.meta = [ev.stopped, `finish: ${ev.stopped ? "max steps" : "stop"}`,
      `${ev.usage.total_tokens} tokens`, `${item.tools.length} tool calls`].filter(Boolean).join(" · ");
  } else if (ev.type === "error") throw new Error(ev.message);
  redraw(item);
}

async function runAgent(item) {
  const response = await post("/app/swarm/runs", { task: item.task }, ui.controller.signal);
  item.run_id = (await response.json()).run_id;
  persist();
  await followRun(item);
}

async function followRun(item) {
  ui.runId = item.run_id;
  const response = await fetch(`/app/swarm/runs/${encodeURIComponent(item.run_id)}/events?after=${item.seq + 1}`,
                               { headers: headers(), signal: ui.controller.signal });
  if (response.status === 404) {
    item.state = "interrupted";
    item.meta = "The server no longer runs this; press Resume to continue it.";
    return;
  }
  if (!response.ok) throw await errorOf(response);
  await readEvents(response.body, (ev) => {
    Agent.apply(item, ev);
    if (ev.type === "final" || ev.type === "cancelled") persist();
    redraw(item);
  });
}

function reattach(item) {
  guarded(item, () => followRun(item));
}

function resumeRun(item) {
  if (ui.controller) return;
  guarded(item, async () => {
    await post(`/app/swarm/runs/${encodeURIComponent(item.run_id)}/resume`, {}, ui.controller.signal);
    Object.assign(item, { seq: -1, state: "running", error: null, failed: false });
    await followRun(item);
  });
}

function stop() {
  if (ui.runId) {
    fetch(`/app/swarm/runs/${encodeURIComponent(ui.runId)}/cancel`, { method: "POST", headers: headers() });
    return; // the stream ends with the run's `cancelled` event
  }
  if (ui.controller) ui.controller.abort();
}

function regenerate() {
  if (ui.controller) return;
  const last = ui.conv.items[ui.conv.items.length - 1];
  if (last && last.kind !== "user") ui.conv.items.pop();
  if (lastUser()) reply();
}

function editMessage(view, index) {
  if (ui.controller) return;
  const box = document.createElement("textarea");
  box.className = "edit-box";
  box.value = ui.conv.items[index].text;
  box.setAttribute("aria-label", "Edit message");
  view.content.replaceChildren(box);
  view.actions.replaceChildren();
  Render.actionButton(view, "Send", () => {
    const text = box.value.trim();
    if (!text) return;
    const media = ui.conv.items[index].media || [];
    if (media.length && mode() !== "chat") { submitText(text, media); return; } // says why
    ui.conv.items = ui.conv.items.slice(0, index);
    submitText(text, media); // an edited message keeps its attachments
  }, "Send the edited message");
  Render.actionButton(view, "Cancel", renderConversation, "Cancel editing");
  box.focus();
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); view.actions.firstChild.click(); }
    if (e.key === "Escape") renderConversation();
  });
}

// ---- wiring ------------------------------------------------------------------------------

function toggleSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  $("menu").setAttribute("aria-expanded", String(open));
}

function exportCurrent(kind) {
  const clean = JSON.parse(JSON.stringify(ui.conv, (k, v) => (k === "view" ? undefined : v)));
  const name = `openk2-${ui.conv.id}`;
  if (kind === "json") Store.download(`${name}.json`, JSON.stringify(clean, null, 2), "application/json");
  else Store.download(`${name}.md`, Store.toMarkdown(clean), "text/markdown");
}

function init() {
  $("api-key").value = localStorage.getItem("openk2-api-key") || "";
  $("api-key").addEventListener("change", () => {
    localStorage.setItem("openk2-api-key", $("api-key").value.trim());
    loadInfo();
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("input").value.trim();
    if (!text || ui.controller) return;
    if (Media.count && mode() !== "chat") { submitText(text); return; } // says why, keeps the text
    $("input").value = "";
    submitText(text);
  });
  $("attach").addEventListener("click", () => $("attach-file").click());
  $("attach-file").addEventListener("change", async () => {
    await attachFiles($("attach-file").files);
    $("attach-file").value = "";
  });
  $("composer").addEventListener("dragover", (e) => { e.preventDefault(); $("composer").classList.add("dropping"); });
  $("composer").addEventListener("dragleave", () => $("composer").classList.remove("dropping"));
  $("composer").addEventListener("drop", (e) => {
    e.preventDefault();
    $("composer").classList.remove("dropping");
    attachFiles(e.dataTransfer.files);
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    if (ui.controller) stop();
    else toggleSidebar(false);
  });
  $("stop").addEventListener("click", stop);
  $("new-chat").addEventListener("click", () => openConversation(Store.create()));
  $("menu").addEventListener("click", () => toggleSidebar(!document.body.classList.contains("sidebar-open")));
  $("close-sidebar").addEventListener("click", () => { toggleSidebar(false); $("menu").focus(); });
  $("export-json").addEventListener("click", () => exportCurrent("json"));
  $("export-md").addEventListener("click", () => exportCurrent("md"));
  ui.list = Store.load();
  const current = localStorage.getItem("openk2-current");
  openConversation(ui.list.find((c) => c.id === current) || Store.create());
  loadInfo();
}

init();
