// Ask: a query with the hybrid / re-rank / answer switches; the answer streams in over SSE
// (fetch + ReadableStream) and every [n] citation links to the quoted span in its passage.
"use strict";
(() => {
const { h, attempt } = LB;

// Parse `text/event-stream` chunks into {event, data} objects.
async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// Wrap the first occurrence of `quote` in `text` (whitespace-tolerant) in a <mark>.
function highlighted(text, quote) {
  if (!quote) return [text];
  let start = text.indexOf(quote), end = start + quote.length;
  if (start < 0) {
    const pattern = quote.trim().split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("\\s+");
    const match = new RegExp(pattern).exec(text);
    if (!match) return [text];
    start = match.index; end = start + match[0].length;
  }
  return [text.slice(0, start), h("mark", { class: "hit" }, text.slice(start, end)), text.slice(end)];
}

LB.pages.ask = async (app) => {
  const picker = await LB.projectPicker(() => {});
  app.append(picker.element);
  if (!picker.id) return;
  const out = h("div");
  const warnings = h("div");
  const answer = h("div", { class: "answer", id: "answer", "aria-live": "polite" });
  const passages = h("div", { id: "passages" });
  let results = [];
  let citations = [];

  function showQuote(n, occurrence) {
    const result = results[n - 1];
    if (!result) return;
    const quotes = citations.filter((c) => c.result_id === result.id).map((c) => c.quote);
    const quote = quotes[Math.min(occurrence, quotes.length - 1)];
    for (const el of passages.querySelectorAll(".passage")) {
      el.classList.remove("flash");
      const text = el.querySelector(".text");
      LB.fill(text, results[Number(el.dataset.n) - 1].chunk_text);
    }
    const target = document.getElementById(`passage-${n}`);
    target.classList.add("flash");
    LB.fill(target.querySelector(".text"), ...highlighted(result.chunk_text, quote));
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    const mark = target.querySelector("mark");
    (mark || target).setAttribute("tabindex", "-1");
    (mark || target).focus({ preventScroll: true });
  }

  function renderAnswer(text, linked) {
    if (!linked) { LB.fill(answer, text); return; }
    const seen = new Map();
    const parts = [];
    let last = 0;
    for (const m of text.matchAll(/\[(\d{1,3})\]/g)) {
      const n = Number(m[1]);
      parts.push(text.slice(last, m.index));
      const occurrence = seen.get(n) || 0;
      seen.set(n, occurrence + 1);
      parts.push(results[n - 1] ? h("a", { href: `#passage-${n}`, class: "cite", "aria-label": `Citation ${n}: show the quote in passage ${n}`,
        onclick: (e) => { e.preventDefault(); showQuote(n, occurrence); } }, `[${n}]`) : m[0]);
      last = m.index + m[0].length;
    }
    parts.push(text.slice(last));
    LB.fill(answer, ...parts);
  }

  function renderPassages() {
    LB.fill(passages, results.map((r, i) => {
      const section = (r.metadata && r.metadata.section_path) || [];
      return h("article", { class: "panel passage", id: `passage-${i + 1}`, "data-n": i + 1, "aria-label": `Passage ${i + 1}` },
        h("h3", {}, `[${i + 1}] ${r.document_name}`, " ", h("span", { class: "badge" }, `v${r.version}`),
          section.length ? h("span", { class: "muted" }, " · " + section.join(" › ")) : null),
        h("p", { class: "muted" }, `score ${r.similarity_score.toFixed(3)}`, r.rerank_score != null ? ` · rerank ${r.rerank_score.toFixed(3)}` : ""),
        h("div", { class: "text" }, r.chunk_text));
    }));
  }

  async function ask(f) {
    results = []; citations = [];
    LB.fill(answer); LB.fill(passages); LB.fill(warnings); LB.fill(out);
    const list = (s) => (s || "").split(",").map((x) => x.trim()).filter(Boolean);
    const filters = {};
    if (list(f.tags).length) filters.tags = list(f.tags);
    if (list(f.types).length) filters.types = list(f.types);
    const body = { project_id: LB.projectId(), query_text: f.query_text, top_k: Number(f.top_k) || 5,
      use_hybrid_search: !!f.hybrid, use_re_ranking: !!f.rerank, use_agentic_rag: !!f.answer, filters };
    const response = await LB.send("POST", "/rag/query", { body, headers: { Accept: "text/event-stream" } });
    if (!response.ok) throw new LB.Problem(response.status, await response.json().catch(() => null));
    let text = "";
    for await (const { event, data } of sseEvents(response)) {
      if (event === "results") { results = data.results; renderPassages(); }
      else if (event === "delta") { text += data.text; renderAnswer(text, false); }
      else if (event === "citations") { citations = data.citations; renderAnswer(text, true); }
      else if (event === "error") throw new LB.Problem(data.status, data);
      else if (event === "done") {
        if (data.synthesized_answer && !text) { text = data.synthesized_answer; renderAnswer(text, true); }
        LB.fill(warnings, ...(data.warnings || []).map((w) => h("div", { class: "alert warn" }, "Warning: ", w)));
        LB.fill(out, h("p", { class: "muted", id: "timing" }, `${results.length} passages in ${Math.round((data.timings_ms || {}).total || 0)} ms${data.cached ? " (cached)" : ""}`));
      }
    }
    if (!results.length) LB.fill(passages, h("p", { class: "muted" }, "No passages matched."));
  }

  const form = h("form", { class: "panel", "aria-label": "Ask a question", onsubmit: (e) => {
      e.preventDefault();
      const button = e.target.querySelector("button[type=submit]");
      button.disabled = true;
      attempt(() => ask(LB.formData(e.target)), out).finally(() => { button.disabled = false; });
    } },
    h("label", {}, "Question", h("textarea", { name: "query_text", required: true, placeholder: "What would you like to know?" })),
    h("fieldset", { class: "row", style: "border:0;padding:0;margin:0 0 .5rem" }, h("legend", { class: "muted" }, "Options"),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "hybrid", checked: true }), "Hybrid search"),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "rerank" }), "Re-rank"),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "answer", checked: true }), "Write an answer")),
    h("div", { class: "row" },
      h("label", {}, "Passages", h("input", { type: "number", name: "top_k", min: 1, max: 50, value: 5 })),
      h("label", {}, "Only tags", h("input", { type: "text", name: "tags", placeholder: "comma-separated" })),
      h("label", {}, "Only types", h("input", { type: "text", name: "types", placeholder: "e.g. markdown, pdf" }))),
    h("button", { type: "submit" }, "Ask"));
  app.append(form, out, warnings,
    h("section", { class: "panel", "aria-labelledby": "answer-h" }, h("h2", { id: "answer-h" }, "Answer"), answer),
    h("section", { "aria-labelledby": "passages-h" }, h("h2", { id: "passages-h" }, "Passages"), passages));
};
})();
