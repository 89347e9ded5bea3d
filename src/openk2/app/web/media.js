// Attachments: images and videos picked (button) or dropped on the composer, previewed, and
// sent to /v1 as OpenAI `image_url` / vLLM-Kimi `video_url` parts carrying data: URLs. The
// server checks formats and sizes and answers a 400 that says why; the page only routes
// files by kind, so nothing it cannot show is ever sent.
"use strict";

const Media = (() => {
  const pending = [];
  let enabled = false;
  let onChange = () => {};

  function kindOf(file) {
    if (file.type.startsWith("image/")) return "image";
    if (file.type.startsWith("video/")) return "video";
    return null;
  }

  function readAsDataURL(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  async function add(files) {
    if (!enabled) return [];
    const refused = [];
    for (const file of files) {
      const kind = kindOf(file);
      if (!kind) { refused.push(file.name); continue; }
      pending.push({ kind, name: file.name, url: await readAsDataURL(file) });
    }
    onChange();
    return refused;
  }

  function take() {
    return pending.splice(0, pending.length);
  }

  function preview(attachment) {
    if (attachment.kind === "image") {
      const img = document.createElement("img");
      Object.assign(img, { src: attachment.url, className: "attachment-media",
                           title: attachment.name, alt: attachment.name });
      return img;
    }
    // a codec the browser cannot play still shows as a named clip
    const figure = document.createElement("figure");
    figure.className = "attachment-media attachment-video";
    const video = document.createElement("video");
    Object.assign(video, { src: attachment.url, muted: true, title: attachment.name });
    const caption = document.createElement("figcaption");
    caption.textContent = `▶ ${attachment.name}`;
    figure.append(video, caption);
    return figure;
  }

  function chip(attachment, index) {
    const wrap = document.createElement("div");
    wrap.className = "attachment";
    wrap.dataset.kind = attachment.kind;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "icon remove-attachment";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove ${attachment.name}`);
    remove.addEventListener("click", () => { pending.splice(index, 1); onChange(); });
    wrap.append(preview(attachment), remove);
    return wrap;
  }

  function drawPending(container) {
    container.replaceChildren(...pending.map(chip));
    container.hidden = pending.length === 0;
  }

  function drawSent(container, media) {
    const strip = document.createElement("div");
    strip.className = "attachments sent";
    strip.append(...media.map((m) => (m.url ? preview(m) : missing(m))));
    container.prepend(strip);
  }

  function missing(attachment) {
    const note = document.createElement("span");
    note.className = "muted";
    note.textContent = `${attachment.kind} ${attachment.name} (not kept: too large for the browser's storage)`;
    return note;
  }

  function contentOf(text, media) {
    const kept = (media || []).filter((m) => m.url); // a reload may have dropped large files
    if (!kept.length) return text;
    const parts = kept.map((m) => (m.kind === "image"
      ? { type: "image_url", image_url: { url: m.url } }
      : { type: "video_url", video_url: { url: m.url } }));
    return [...parts, { type: "text", text }];
  }

  function setEnabled(value, changed) {
    enabled = value;
    onChange = changed;
    if (!value) pending.length = 0;
  }

  return { add, take, drawPending, drawSent, contentOf, setEnabled,
           get count() { return pending.length; } };
})();
