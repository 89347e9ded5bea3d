// Agent mode: a swarm run's events folded into one item (plan, sub-agents, final answer and
// summary) and drawn as a card per sub-agent. Events carry `seq`, so a reload or a resumed
// stream continues where the item left off.
"use strict";

const Agent = (() => {
  function newItem(task) {
    return { kind: "agent", task, run_id: null, plan: [], agents: {}, retries: 0,
             final: null, state: "starting", error: null, seq: -1 };
  }

  function callsOf(item, agentId) {
    if (agentId === "main") return item.plan;
    return (item.agents[agentId] || (item.agents[agentId] = blankAgent(agentId))).tools;
  }

  function blankAgent(id) {
    return { agent_id: id, name: id, prompt: "", state: "running", steps: 0, tokens: 0,
             tools: [], result: "", error: null };
  }

  const handlers = {
    run(item, ev) { item.run_id = ev.run_id; item.state = "running"; },
    agent(item, ev) {
      const a = item.agents[ev.agent_id] || blankAgent(ev.agent_id);
      Object.assign(a, { name: ev.name, prompt: ev.prompt || a.prompt });
      if (!ev.replayed || a.state !== "completed") a.state = "running";
      item.agents[ev.agent_id] = a;
    },
    step(item, ev) {
      if (ev.agent_id === "main") return;
      callsOf(item, ev.agent_id);
      item.agents[ev.agent_id].steps = ev.step;
    },
    tool_call(item, ev) {
      callsOf(item, ev.agent_id).push({ id: ev.id, name: ev.name, arguments: ev.arguments });
    },
    tool_result(item, ev) {
      const call = callsOf(item, ev.agent_id).find((c) => c.id === ev.id && c.output == null);
      if (call) Object.assign(call, { output: ev.output, ok: ev.ok });
    },
    step_end(item, ev) {
      if (ev.agent_id !== "main" && ev.content) item.agents[ev.agent_id].result = ev.content;
    },
    agent_done(item, ev) {
      const a = item.agents[ev.agent_id] || (item.agents[ev.agent_id] = blankAgent(ev.agent_id));
      Object.assign(a, { state: ev.state, steps: ev.steps, tokens: ev.tokens, error: ev.error });
    },
    retry(item) { item.retries += 1; },
    final(item, ev) { item.final = ev; item.state = ev.state; },
    cancelled(item) { item.state = "cancelled"; },
    error(item, ev) { item.state = "error"; item.error = ev.message; },
  };

  function apply(item, ev) {
    if (typeof ev.seq === "number") {
      if (ev.seq <= item.seq) return; // already folded in (a replayed stream)
      item.seq = ev.seq;
    }
    const handler = handlers[ev.type];
    if (handler) handler(item, ev);
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function agentCard(a) {
    const card = el("section", `subagent ${a.state}`);
    card.dataset.agentId = a.agent_id;
    card.setAttribute("aria-label", `sub-agent ${a.agent_id}`);
    const head = el("div", "subagent-head");
    head.append(el("strong", "subagent-id", a.agent_id), el("span", "badge", a.state),
                el("span", "muted", `${a.steps} steps · ${a.tokens} tokens`));
    card.append(head);
    if (a.prompt) card.append(el("div", "subagent-prompt", a.prompt));
    const calls = el("div", "tool-calls");
    calls.append(...a.tools.map(Render.toolCard));
    card.append(calls);
    if (a.result) card.append(el("div", "subagent-result", `Result: ${a.result}`));
    if (a.error) card.append(el("div", "error-text", a.error));
    return card;
  }

  function draw(view, item) {
    view.content.replaceChildren();
    const box = el("div", "agent-run");
    box.append(el("div", "agent-task", `Task: ${item.task}`));
    if (item.plan.length) {
      const plan = el("details", "plan");
      plan.open = !item.final;
      plan.append(el("summary", "", `Orchestrator plan (${item.plan.length} calls)`));
      plan.append(...item.plan.map(Render.toolCard));
      box.append(plan);
    }
    const agents = Object.values(item.agents);
    const list = el("div", "subagents");
    list.append(...agents.map(agentCard));
    box.append(list);
    if (item.retries) box.append(el("div", "muted", `${item.retries} retries after rate limits`));
    box.append(...finalParts(item));
    view.content.append(box);
    view.meta.textContent = item.final ? Store.summaryText(item.final)
      : `${item.state}${item.run_id ? ` · run ${item.run_id}` : ""}`;
  }

  function finalParts(item) {
    if (item.error) return [el("div", "error-text", item.error)];
    if (!item.final) return [];
    const answer = el("div", "final-answer markdown");
    Render.markdown(answer, item.final.answer || "(no answer)");
    const heading = el("div", "final-heading", "Final answer");
    const failures = (item.final.failures || []).map(
      (f) => el("div", "error-text", `${f.agent_id} ${f.state}: ${f.error || ""}`));
    return [heading, answer, ...failures];
  }

  return { newItem, apply, draw };
})();
