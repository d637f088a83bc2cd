// Tasks board, Connect an agent (API keys, MCP configs), Admin.
"use strict";
(() => {
const { h, api, attempt } = LB;
const STATUSES = [["todo", "To do"], ["in_progress", "In progress"], ["blocked", "Blocked"], ["done", "Done"]];
const PRIORITIES = ["low", "medium", "high", "critical"];

LB.pages.tasks = async (app) => {
  const picker = await LB.projectPicker(() => location.reload());
  app.append(picker.element);
  if (!picker.id) return;
  const projectId = picker.id;
  const writable = LB.canWrite(await LB.role(projectId));
  const board = h("div", { class: "board" });
  const depSelect = h("select", { name: "dependencies", multiple: true, size: 4 });
  const createError = h("div");
  let tasks = [];
  if (writable) {
    app.append(h("form", { class: "panel", "aria-labelledby": "new-task-h", onsubmit: (e) => {
        e.preventDefault();
        const f = LB.formData(e.target);
        const dependencies = [...depSelect.selectedOptions].map((o) => o.value);
        attempt(async () => {
          await api("POST", "/tasks", { project_id: projectId, title: f.title, description: f.description || null,
            priority: f.priority, assignee: f.assignee || null, dependencies });
          e.target.reset();
          LB.fill(createError);
          await load();
        }, createError);
      } },
      h("h2", { id: "new-task-h" }, "New task"),
      h("div", { class: "row" },
        h("label", {}, "Title", h("input", { type: "text", name: "title", required: true })),
        h("label", {}, "Priority", h("select", { name: "priority" }, PRIORITIES.map((p) => h("option", { value: p, selected: p === "medium" }, p)))),
        h("label", {}, "Assignee", h("input", { type: "text", name: "assignee" }))),
      h("div", { class: "row" },
        h("label", {}, "Description", h("textarea", { name: "description" })),
        h("label", {}, "Depends on (select several with Ctrl/⌘)", depSelect)),
      createError, h("button", { type: "submit" }, "Create task")));
  }
  app.append(board);

  function card(task, byId) {
    const deps = task.dependencies.map((id) => byId.get(id)).filter(Boolean);
    const blockers = deps.filter((d) => d.status !== "done");
    const err = h("div");
    const move = writable ? h("label", {}, "Status",
      h("select", { "aria-label": `Status of ${task.title}`, onchange: (e) => attempt(async () => {
          await api("PUT", `/tasks/${task.id}`, { status: e.target.value });
          await load();
        }, err).then(() => { if (err.childNodes.length) e.target.value = task.status; }) },
        STATUSES.map(([value, label]) => h("option", { value, selected: value === task.status }, label)))) : null;
    return h("article", { class: `card ${blockers.length ? "blocked" : ""}`, "data-task": task.title, "aria-label": task.title },
      h("div", { class: "title" }, task.title),
      h("div", {}, h("span", { class: `badge ${task.priority}` }, task.priority), task.assignee ? h("span", { class: "badge" }, "@" + task.assignee) : null),
      task.description ? h("p", { class: "muted" }, task.description) : null,
      deps.length ? h("p", {}, "Depends on: ", deps.map((d) => `${d.title} (${d.status})`).join(", ")) : null,
      blockers.length ? h("p", { class: "blockers" }, h("strong", {}, "Blocked by: "), blockers.map((d) => d.title).join(", ")) : null,
      move, err);
  }

  async function load() {
    const page = await api("GET", `/tasks?project_id=${projectId}&limit=500`);
    tasks = page.items;
    const byId = new Map(tasks.map((t) => [t.id, t]));
    LB.fill(depSelect, tasks.map((t) => h("option", { value: t.id }, t.title)));
    LB.fill(board, STATUSES.map(([status, label]) => {
      const here = tasks.filter((t) => t.status === status);
      return h("section", { class: "column", "aria-label": label, "data-column": status },
        h("h2", {}, `${label} (${here.length})`), here.map((t) => card(t, byId)));
    }));
    if (page.total > page.items.length) board.append(h("p", { class: "muted" }, `Showing ${page.items.length} of ${page.total} tasks.`));
  }
  await load();
};

function mcpConfigs(key) {
  const url = `${location.origin}/mcp`;
  const http = { mcpServers: { lorebase: { type: "http", url, headers: { Authorization: `Bearer ${key}` } } } };
  const stdio = { mcpServers: { lorebase: { command: "lorebase", args: ["mcp"], env: { LOREBASE_TOKEN: key } } } };
  return [
    ["Streamable HTTP (Claude Desktop, Cursor, VS Code and other hosts)", JSON.stringify(http, null, 2)],
    ["Claude Code", `claude mcp add --transport http lorebase ${url} --header "Authorization: Bearer ${key}"`],
    ["stdio (runs lorebase mcp on this machine, with the server's settings)", JSON.stringify(stdio, null, 2)],
  ];
}

function copyBlock(title, text, id) {
  const status = h("span", { class: "muted", role: "status" });
  return h("div", {}, h("h3", {}, title), h("pre", { id }, h("code", {}, text)),
    h("button", { class: "secondary small", type: "button", onclick: async () => {
      try { await navigator.clipboard.writeText(text); status.textContent = " Copied."; }
      catch { status.textContent = " Select the text and copy it."; }
    } }, "Copy"), status);
}

LB.pages.connect = async (app) => {
  const projects = await LB.projects();
  const shown = h("div");
  const configs = h("div");
  const keys = h("div");
  const err = h("div");
  const renderConfigs = (key) => LB.fill(configs, 
    mcpConfigs(key).map(([title, text], i) => copyBlock(title, text, `mcp-config-${i}`)));
  app.append(
    h("p", {}, "Project owners add you to a project by your username, ", h("strong", {}, LB.me.username),
      LB.me.email ? [" or e-mail address ", h("strong", {}, LB.me.email)] : null, ". Your user id is ", h("code", { id: "my-user-id" }, LB.me.id), "."),
    h("div", { class: "grid" },
      h("form", { class: "panel", "aria-labelledby": "key-h", onsubmit: (e) => {
          e.preventDefault();
          const f = new FormData(e.target);
          attempt(async () => {
            const made = await api("POST", "/api-keys", { name: f.get("name"), scopes: f.getAll("scopes"), project_id: f.get("project_id") || null });
            LB.fill(shown, h("div", { class: "alert ok" }, "Copy this key now; it is shown only once."),
              copyBlock(`API key “${made.name}”`, made.key, "new-key"));
            renderConfigs(made.key);
            LB.fill(err);
            await loadKeys();
          }, err);
        } },
        h("h2", { id: "key-h" }, "Create an API key"),
        h("label", {}, "Name", h("input", { type: "text", name: "name", required: true, value: "my-agent" })),
        h("fieldset", { style: "border:0;padding:0" }, h("legend", { class: "muted" }, "Scopes"),
          ["read", "write", "admin"].map((s) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "scopes", value: s, checked: s !== "admin" }), s))),
        h("label", {}, "Only this project", h("select", { name: "project_id" }, h("option", { value: "" }, "(all my projects)"), projects.map((p) => h("option", { value: p.id }, p.name)))),
        err, h("button", { type: "submit" }, "Create key"), shown),
      h("section", { class: "panel", "aria-labelledby": "mcp-h" }, h("h2", { id: "mcp-h" }, "MCP configuration"), configs)),
    h("section", { class: "panel", "aria-labelledby": "keys-h" }, h("h2", { id: "keys-h" }, "Your API keys"), keys));
  renderConfigs("YOUR_API_KEY");

  async function loadKeys(skip = 0) {
    const page = await api("GET", `/api-keys?skip=${skip}&limit=20`);
    LB.fill(keys, page.items.length ? LB.table(["Name", "Prefix", "Scopes", "Last used", ""], page.items.map((k) => [
      k.name, h("code", {}, k.prefix), k.scopes.join(", "), LB.when(k.last_used_at) || "never",
      h("button", { class: "danger small", type: "button", "aria-label": `Revoke ${k.name}`, onclick: () => attempt(async () => { await api("DELETE", `/api-keys/${k.id}`); await loadKeys(); }) }, "Revoke")]))
      : h("p", { class: "muted" }, "No keys yet."), LB.pager(page, loadKeys, "Key pages"));
  }
  await loadKeys();
};

function metricSum(text, name, match = () => true) {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const [series, value] = [line.slice(0, line.lastIndexOf(" ")), Number(line.slice(line.lastIndexOf(" ") + 1))];
    if (match(series)) total += value;
  }
  return total;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

LB.pages.admin = async (app) => {
  if (!LB.me.is_admin) {
    app.append(h("div", { class: "alert" }, "This page is for administrators."));
    return;
  }
  const [health, metrics, overview, users] = await Promise.all([
    fetch("/api/v1/health").then((r) => r.json()),
    fetch("/metrics").then((r) => r.text()),
    api("GET", "/console/admin/overview"),
    api("GET", "/console/users?limit=100")]);
  const requests = metricSum(metrics, "lorebase_http_requests_total{");
  const errors = metricSum(metrics, "lorebase_http_requests_total{", (s) => /status="5/.test(s));
  const badge = (v) => h("span", { class: `badge ${v === "ok" ? "ok" : "bad"}` }, v);
  const kv = (...pairs) => h("dl", { class: "kv" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const panel = (id, title, ...body) => h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), body);
  const knowledgeLink = (projectId, jobId, text) => h("a", { href: `/knowledge?project=${projectId}${jobId ? `&job=${jobId}` : ""}` }, text);
  const q = overview.queue;
  const space = (p) => (p.embedding_model ? `${p.embedding_model} · ${p.embedding_dim}-d` : "none yet");
  const stored = (p) => p.stored.length ? p.stored.map((s) => h("div", {}, `${plural(s.items, "chunk")} of ${plural(s.documents, "document")}`, p.stored.length > 1 ? ` (${s.embedding_model}, ${s.embedding_dim}-d)` : "")) : "no chunks";
  const fits = (p) => p.matches_configured === null ? h("span", { class: "muted" }, "any") : p.matches_configured
    ? h("span", { class: "badge ok" }, "matches") : h("span", { class: "badge bad" }, "differs: run lorebase reembed");
  const failedList = overview.failed.length ? h("ol", { class: "failures" }, overview.failed.map((j) => h("li", { "data-failed-job": j.id },
    h("div", {}, h("strong", {}, j.kind), " in ", knowledgeLink(j.project_id, null, j.project_name), " · ", LB.when(j.finished_at),
      j.url ? [" · ", h("span", { class: "muted" }, j.url)] : null),
    h("div", { class: "alert" }, j.error || "failed without a message"),
    h("div", {}, knowledgeLink(j.project_id, j.id, j.retried_as ? "See it (queued again)" : "See it and retry"))))) : h("p", { class: "muted" }, "No job failed in the last day.");
  app.append(h("div", { class: "grid" },
    panel("health-h", "Health", kv(["Status", badge(health.status)], ["Database", badge(health.database)], ["Cache", badge(health.cache)], ["Version", health.version])),
    panel("queue-h", "Queue", kv(["Jobs waiting", h("span", { id: "queue-depth" }, String(q.queued))], ["Jobs running", String(q.running)],
      ["Oldest waiting since", q.oldest_queued_at ? LB.when(q.oldest_queued_at) : "nothing waits"],
      [`Failed in the last ${overview.failed_window_hours} h`, h("span", { id: "failed-count" }, String(overview.failed_total))])),
    panel("metrics-h", "Traffic (this process)", kv(["Requests", String(requests)], ["Server errors (5xx)", String(errors)]))),
    panel("failed-h", `Jobs failed in the last ${overview.failed_window_hours} hours (${overview.failed_total})`, failedList,
      overview.failed_total > overview.failed.length ? h("p", { class: "muted" }, `Showing the latest ${overview.failed.length}.`) : null),
    panel("spaces-h", "Embedding model and jobs per project",
      h("p", {}, "This server embeds with ", h("code", {}, overview.embedder.model), ` (${overview.embedder.dimension} dimensions). A project keeps the space its knowledge was embedded in.`),
      LB.table(["Project", "Embedding space", "Stored", "Configured model", "Queued", "Running", "Failed (24 h)"], overview.projects.map((p) => [
        knowledgeLink(p.id, null, p.name), space(p), stored(p), fits(p), String(p.queued), String(p.running), String(p.failed)])),
      overview.projects_total > overview.projects.length ? h("p", { class: "muted" }, `Showing ${overview.projects.length} of ${overview.projects_total} projects.`) : null),
    panel("users-h", `Users (${users.total})`,
      LB.table(["Username", "Email", "Admin", "Created", "Id"], users.items.map((u) => [u.username, u.email || "", u.is_admin ? "yes" : "", LB.when(u.created_at), h("code", {}, u.id)])),
      users.total > users.items.length ? h("p", { class: "muted" }, `Showing the first ${users.items.length} of ${users.total}.`) : null));
};
})();
