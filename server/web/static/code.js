// The "New code" page and a code conversation's page: post the request, read the answer's Server-Sent Events
// (fetch + ReadableStream: token, attempt, done, error) and show them as they come. No library, no CDN.
// The page's streams are POST /code/stream, /code/{id}/regenerate/stream and /code/{id}/feedback/stream,
// authenticated by the session cookie and the X-CSRF-Token header (server/web/pages_code.py).
"use strict";

(function () {
  const answer = document.getElementById("answer");
  const versions = document.getElementById("versions");
  const form = document.getElementById("code-form");
  const feedbackForm = document.getElementById("feedback-form");
  const regenerate = document.getElementById("regenerate");
  const streamError = document.getElementById("stream-error");
  const total = document.getElementById("total");
  const continueBox = document.getElementById("continue");
  const csrf = answer.dataset.csrf;
  let busy = false;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setBusy(on) {
    busy = on;
    for (const button of document.querySelectorAll("#code-form button, #continue button")) button.disabled = on;
    continueBox.hidden = !answer.dataset.conversation; // nothing to regenerate or refine yet
  }

  // -- Server-Sent Events over fetch ------------------------------------------------------------------------

  async function post(url, body, handlers) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
    } catch (error) {
      return handlers.error("The server could not be reached: " + error.message);
    }
    const kind = response.headers.get("content-type") || "";
    if (!kind.startsWith("text/event-stream")) {
      if (kind.startsWith("application/json")) {
        const payload = await response.json().catch(() => ({}));
        const message = (payload.error && payload.error.message) || "The request failed (" + response.status + ").";
        return handlers.error(message);
      }
      if (response.redirected || kind.startsWith("text/html")) {
        return handlers.error("Your session has ended: reload the page and sign in again.");
      }
      return handlers.error("The request failed (" + response.status + ").");
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let finished = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue; // a comment (sse-starlette's pings)
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length || !handlers[name]) continue;
        const payload = JSON.parse(data.join("\n"));
        if (name === "error") return handlers.error(payload.message || "The server failed.");
        handlers[name](payload);
        if (name === "done") finished = true;
      }
    }
    if (!finished) handlers.error("The answer stopped before it was complete.");
  }

  // -- one version as it streams ----------------------------------------------------------------------------

  function newVersion(label) {
    const article = el("article", { class: "version streaming" });
    const heading = el("h2", {}, label);
    const status = el("p", { class: "muted small status", role: "status" }, "Writing…");
    const live = el("pre", { class: "live" });
    const attempts = el("ol", { class: "attempts" });
    article.append(heading, status, live, attempts);
    versions.append(article);
    article.scrollIntoView({ block: "nearest" });
    return { article, heading, status, live, attempts, target: answer.dataset.target || "python" };
  }

  function showAttempt(view, attempt) {
    const diagram = view.target === "plantuml";
    const item = el("li", { class: "attempt " + (attempt.ok ? "pass" : "fail") });
    let summary;
    if (diagram) summary = attempt.ok ? "rendered" : "did not render: " + (attempt.reason || "error");
    else summary = attempt.passed + " passed, " + attempt.failed + " failed" + (attempt.reason ? "; " + attempt.reason : "");
    item.append(el("strong", {}, "Attempt " + attempt.number + ": "), el("span", { class: "verdict" }, summary));
    if (!attempt.ok && attempt.output) item.append(el("pre", { class: "output" }, attempt.output));
    if (attempt.code) {
      const details = el("details", {});
      details.append(el("summary", {}, diagram ? "its source" : "its code"), el("pre", { class: "plain" }, attempt.code));
      item.append(details);
    }
    view.attempts.append(item);
    view.live.textContent = ""; // the next attempt's reply streams in afresh
    view.status.textContent = attempt.ok ? "Done with attempt " + attempt.number + "." : "Trying again…";
  }

  function badge(data) {
    if (data.ok === null || data.ok === undefined) return el("span", { class: "badge" }, "untested");
    const words = data.target === "plantuml" ? ["rendered", "did not render"] : ["tests passed", "tests failed"];
    return el("span", { class: "badge " + (data.ok ? "pass" : "fail") }, data.ok ? words[0] : words[1]);
  }

  function showDone(view, data) {
    const ns = answer.dataset.ns || "";
    const base = "/code/" + data.conversation;
    answer.dataset.conversation = data.conversation;
    answer.dataset.target = data.target;
    const link = document.getElementById("conversation-link");
    link.href = base + ns;
    link.textContent = data.conversation;
    view.article.classList.remove("streaming");
    view.article.dataset.version = data.version;
    view.heading.textContent = "Version " + data.version + " ";
    view.heading.append(badge(data));
    view.status.textContent = data.attempts.length ? data.attempts.length + " attempt" + (data.attempts.length === 1 ? "" : "s") : "";
    view.live.remove();
    const result = el("div", { class: "result" + (data.target === "plantuml" ? " diagram" : "") });
    if (data.svg) {
      const figure = el("figure", { class: "picture" });
      const url = URL.createObjectURL(new Blob([data.svg], { type: "image/svg+xml" }));
      figure.append(el("img", { alt: "Diagram, version " + data.version, src: url }));
      result.append(figure);
    }
    const source = el("div", { class: "source" });
    source.innerHTML = data.html; // Pygments' HTML, made on the server: the code in it is escaped
    result.append(source);
    const actions = el("p", { class: "actions" });
    const copy = el("button", { type: "button", class: "copy" }, "Copy");
    copy.dataset.code = data.code;
    actions.append(copy);
    if (data.target === "plantuml") {
      const query = (ns ? ns + "&" : "?") + "download=1";
      if (data.ok) actions.append(" ", el("a", { class: "download-svg", href: base + "/v" + data.version + ".svg" + query }, "Download .svg"));
      actions.append(" ", el("a", { class: "download-puml", href: base + "/v" + data.version + ".puml" + query }, "Download .puml"));
    }
    view.article.append(result, actions, el("p", { class: "usage" }, "This request: " + data.usage_text));
    total.textContent = "Conversation total: " + data.total_text;
  }

  async function run(url, body, label) {
    if (busy) return;
    setBusy(true);
    streamError.hidden = true;
    answer.hidden = false;
    const view = newVersion(label);
    await post(url, body, {
      token: (data) => { view.live.textContent += data.text; },
      attempt: (data) => showAttempt(view, data),
      done: (data) => showDone(view, data),
      error: (message) => {
        view.article.classList.remove("streaming");
        view.article.classList.add("failed");
        view.status.textContent = "Failed.";
        streamError.textContent = message;
        streamError.hidden = false;
      },
    });
    setBusy(false);
  }

  // -- the forms and buttons --------------------------------------------------------------------------------

  if (form) {
    const target = form.elements.target;
    const toggle = () => {
      for (const node of form.querySelectorAll(".python-only")) node.hidden = target.value !== "python";
    };
    target.addEventListener("change", toggle);
    toggle();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const fields = form.elements;
      const body = { description: fields.description.value, target: fields.target.value,
                     max_retries: Number(fields.max_retries.value || 2) };
      if (fields.model.value) body.model = fields.model.value;
      if (body.target === "python") {
        body.module = fields.module.value || "solution";
        if (fields.tests.value.trim()) body.tests = fields.tests.value;
      }
      versions.replaceChildren(); // a new conversation
      total.textContent = "";
      answer.dataset.conversation = "";
      answer.dataset.target = body.target;
      run(form.dataset.stream, body, "Version 1");
    });
  }

  const conversationUrl = (action) => "/code/" + answer.dataset.conversation + "/" + action + "/stream" + (answer.dataset.ns || "");

  regenerate.addEventListener("click", () => run(conversationUrl("regenerate"), {}, "Regenerating…"));

  feedbackForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = feedbackForm.elements.text.value;
    if (!text.trim()) return;
    run(conversationUrl("feedback"), { text }, "Next version…").then(() => {
      if (streamError.hidden) feedbackForm.reset();
    });
  });

  versions.addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const code = button.dataset.code || "";
    try {
      await navigator.clipboard.writeText(code);
    } catch (_error) { // no clipboard API (a plain-http page on another host): the old way
      const area = el("textarea", { readonly: "", style: "position:fixed;opacity:0" });
      area.value = code;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
})();
