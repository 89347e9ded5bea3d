// Rendering: markdown (marked, then DOMPurify) with copy buttons on code blocks, tool-call
// cards, and message views. Model text reaches the DOM only sanitized or as textContent.
"use strict";

const Render = (() => {
  marked.setOptions({ gfm: true, breaks: true });

  function markdown(target, text) {
    target.innerHTML = DOMPurify.sanitize(marked.parse(text || ""));
    for (const pre of target.querySelectorAll("pre")) addCopyButton(pre);
    for (const a of target.querySelectorAll("a")) {
      a.target = "_blank";
      a.rel = "noopener noreferrer";
    }
  }

  function addCopyButton(pre) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy code");
    button.addEventListener("click", async () => {
      const code = pre.querySelector("code") || pre;
      try {
        await navigator.clipboard.writeText(code.textContent);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Copy failed";
      }
      setTimeout(() => (button.textContent = "Copy"), 1500);
    });
    pre.append(button);
  }

  function prettyJson(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text || "";
    }
  }

  function toolCard(call) {
    const card = document.createElement("div");
    card.className = "tool-call";
    card.dataset.callId = call.id || "";
    const name = document.createElement("div");
    name.className = "tool-name";
    name.textContent = `ƒ ${call.name}`;
    const args = document.createElement("pre");
    args.className = "tool-args";
    args.textContent = prettyJson(call.arguments);
    const result = document.createElement("div");
    result.className = "tool-result";
    card.append(name, args, result);
    setToolResult(card, call);
    return card;
  }

  function setToolResult(card, call) {
    const result = card.querySelector(".tool-result");
    const done = call.output !== undefined && call.output !== null;
    card.classList.toggle("pending", !done);
    card.classList.toggle("failed", done && call.ok === false);
    result.textContent = done ? `→ ${call.output}` : "running…";
  }

  function messageView(container, role, label) {
    const root = document.getElementById("message-template").content.firstElementChild
      .cloneNode(true);
    root.classList.add(role);
    root.querySelector(".role").textContent = label;
    container.append(root);
    return {
      root,
      reasoning: root.querySelector(".reasoning"),
      reasoningText: root.querySelector(".reasoning-text"),
      content: root.querySelector(".content"),
      toolCalls: root.querySelector(".tool-calls"),
      meta: root.querySelector(".meta"),
      actions: root.querySelector(".actions"),
    };
  }

  function actionButton(view, text, onClick, label) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = text;
    button.setAttribute("aria-label", label || text);
    button.addEventListener("click", onClick);
    view.actions.append(button);
    return button;
  }

  function assistant(view, item) {
    if (item.reasoning) {
      view.reasoning.hidden = false;
      view.reasoningText.textContent = item.reasoning;
    }
    view.toolCalls.replaceChildren(...(item.tools || []).map(toolCard));
    markdown(view.content, item.content);
    view.meta.textContent = item.meta || "";
    view.root.classList.toggle("failed", Boolean(item.failed));
  }

  return { markdown, toolCard, setToolResult, messageView, actionButton, assistant, prettyJson };
})();
