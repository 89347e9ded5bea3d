// Conversations kept in the browser (localStorage), and their export as JSON or Markdown.
// A conversation is {id, title, updated, items}; an item is a user message, an assistant
// reply (chat or tools mode, with the OpenAI messages it added) or an agent-mode run.
"use strict";

const Store = (() => {
  const KEY = "openk2-conversations";

  function load() {
    try {
      const list = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(list) ? list : [];
    } catch {
      return []; // a corrupt entry must not lock the page; it is replaced on the next save
    }
  }

  function save(list) {
    // `view` is the item's DOM view, rebuilt on load; attachments' data URLs are large, so
    // when the quota is hit they are dropped from storage (names kept), not from the page
    const without = (drop) => (k, v) => (k === "view" || (drop && k === "url") ? undefined : v);
    for (const drop of [false, true]) {
      try {
        localStorage.setItem(KEY, JSON.stringify(list, without(drop)));
        return true;
      } catch {
        // quota exceeded: try again without the attachments, then give up
      }
    }
    return false; // the page keeps working, the caller says so
  }

  function create() {
    const id = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    return { id, title: "New chat", updated: Date.now(), items: [] };
  }

  function titleOf(conv) {
    const first = conv.items.find((i) => i.kind === "user");
    return first ? first.text.slice(0, 60) : "New chat";
  }

  function toMarkdown(conv) {
    const parts = [`# ${conv.title}`];
    for (const item of conv.items) {
      if (item.kind === "user") parts.push(`## You\n\n${item.text}${attachmentNote(item)}`);
      else if (item.kind === "assistant") parts.push(assistantMarkdown(item));
      else if (item.kind === "agent") parts.push(agentMarkdown(item));
    }
    return parts.join("\n\n") + "\n";
  }

  function attachmentNote(item) {
    const media = item.media || [];
    return media.length ? `\n\n_attached: ${media.map((m) => `${m.kind} ${m.name}`).join(", ")}_` : "";
  }

  function assistantMarkdown(item) {
    const lines = ["## openk2"];
    if (item.reasoning) lines.push(`<details><summary>Thinking</summary>\n\n${item.reasoning}\n\n</details>`);
    for (const call of item.tools || []) {
      lines.push(`> tool \`${call.name}\` \`${call.arguments}\` → ${call.output ?? "(no result)"}`);
    }
    lines.push(item.content || "");
    return lines.join("\n\n");
  }

  function agentMarkdown(item) {
    const agents = Object.values(item.agents || {});
    const lines = ["## openk2 (agent mode)"];
    for (const a of agents) lines.push(`- **${a.agent_id}** (${a.state}): ${a.result || ""}`);
    if (item.final) lines.push(item.final.answer || "", `_${summaryText(item.final)}_`);
    return lines.join("\n\n");
  }

  function summaryText(final) {
    const tokens = final.usage ? final.usage.total_tokens : 0;
    return `${final.state}: ${final.agents} agents, ${final.steps} steps, ` +
      `${final.critical_steps} critical steps, ${tokens} tokens, $${(final.cost_usd || 0).toFixed(4)}`;
  }

  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  return { load, save, create, titleOf, toMarkdown, summaryText, download };
})();
