// Sign in / sign up, Projects, Knowledge.
"use strict";
(() => {
const { h, api, attempt, notice } = LB;

LB.pages.login = async (app) => {
  const next = new URLSearchParams(location.search).get("next") || "/projects";
  const signInError = h("div");
  const signUpError = h("div");
  async function signIn(username, password, where) {
    const body = new FormData();
    body.set("username", username);
    body.set("password", password);
    const response = await LB.send("POST", "/console/session", { body, retry: false });
    if (!response.ok) throw new LB.Problem(response.status, await response.json().catch(() => null));
    location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/projects";
  }
  const signInForm = h("form", { class: "panel", "aria-labelledby": "signin-h", onsubmit: (e) => {
      e.preventDefault();
      const f = LB.formData(e.target);
      attempt(() => signIn(f.username, f.password), signInError);
    } },
    h("h2", { id: "signin-h" }, "Sign in"),
    h("label", {}, "Username", h("input", { type: "text", name: "username", autocomplete: "username", required: true })),
    h("label", {}, "Password", h("input", { type: "password", name: "password", autocomplete: "current-password", required: true })),
    signInError, h("button", { type: "submit" }, "Sign in"));
  const signUpForm = h("form", { class: "panel", "aria-labelledby": "signup-h", onsubmit: (e) => {
      e.preventDefault();
      const f = LB.formData(e.target);
      attempt(async () => {
        await api("POST", "/auth/register", { username: f.username, password: f.password, email: f.email || null });
        await signIn(f.username, f.password);
      }, signUpError);
    } },
    h("h2", { id: "signup-h" }, "Create an account"),
    h("label", {}, "Username", h("input", { type: "text", name: "username", autocomplete: "username", required: true, minlength: 3, pattern: "[A-Za-z0-9_.\\-]+" })),
    h("label", {}, "Email (optional)", h("input", { type: "email", name: "email", autocomplete: "email" })),
    h("label", {}, "Password (at least 8 characters)", h("input", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: 8 })),
    signUpError, h("button", { type: "submit" }, "Create account"));
  app.append(
    h("div", { class: "alert info" }, "First time on this server? Accounts made here are regular users. To create the first administrator, run ",
      h("code", {}, "lorebase user create NAME --admin"), " on the server, then sign in with it."),
    h("div", { class: "grid" }, signInForm, signUpForm));
};

// ---- Projects ------------------------------------------------------------------------------
LB.pages.projects = async (app) => {
  const filters = h("form", { class: "panel row", "aria-label": "Filter projects", onsubmit: (e) => { e.preventDefault(); load(); } },
    h("label", {}, "Status", h("select", { name: "status" }, h("option", { value: "" }, "any"), h("option", { value: "active" }, "active"), h("option", { value: "archived" }, "archived"))),
    h("label", {}, "Tag", h("input", { type: "text", name: "tag", placeholder: "e.g. docs" })),
    h("button", { type: "submit", class: "secondary" }, "Filter"));
  const list = h("div", { class: "panel" });
  const createError = h("div");
  const parentSelect = h("select", { name: "parent_id" }, h("option", { value: "" }, "(none)"));
  const create = h("form", { class: "panel", "aria-labelledby": "new-project-h", onsubmit: (e) => {
      e.preventDefault();
      const f = LB.formData(e.target);
      attempt(async () => {
        const tags = f.tags.split(",").map((t) => t.trim()).filter(Boolean);
        const made = await api("POST", "/projects", { name: f.name, description: f.description || null, tags, parent_id: f.parent_id || null });
        LB.setProject(made.id);
        e.target.reset();
        LB.fill(createError);
        notice(`Project “${made.name}” created.`, "ok");
        await load();
      }, createError);
    } },
    h("h2", { id: "new-project-h" }, "New project"),
    h("div", { class: "row" },
      h("label", {}, "Name", h("input", { type: "text", name: "name", required: true, maxlength: 200 })),
      h("label", {}, "Tags (comma-separated)", h("input", { type: "text", name: "tags" })),
      h("label", {}, "Parent", parentSelect)),
    h("label", {}, "Description", h("textarea", { name: "description" })),
    createError, h("button", { type: "submit" }, "Create project"));
  app.append(create, filters, list);

  async function load() {
    const f = LB.formData(filters);
    const query = new URLSearchParams({ limit: "500" });
    if (f.status) query.set("status", f.status);
    if (f.tag) query.set("tag", f.tag);
    const page = await api("GET", "/projects?" + query);
    LB.fill(parentSelect, h("option", { value: "" }, "(none)"), page.items.map((p) => h("option", { value: p.id }, p.name)));
    const byParent = new Map();
    const ids = new Set(page.items.map((p) => p.id));
    for (const p of page.items) {
      const key = p.parent_id && ids.has(p.parent_id) ? p.parent_id : "";
      if (!byParent.has(key)) byParent.set(key, []);
      byParent.get(key).push(p);
    }
    const branch = (key) => h("ul", { class: "tree" }, (byParent.get(key) || []).map((p) => h("li", {}, row(p), byParent.has(p.id) ? branch(p.id) : null)));
    LB.fill(list, h("h2", {}, `Projects (${page.total})`),
      page.items.length ? branch("") : h("p", { class: "muted" }, "No projects match."),
      page.total > page.items.length ? h("p", { class: "muted" }, `Showing ${page.items.length} of ${page.total}; narrow with a tag or status.`) : null);
  }

  function row(p) {
    // The caller's role comes with the list: editors may rename and archive, owners (and
    // administrators) also manage members and delete; viewers get no actions.
    const manage = p.role === "owner" || LB.me.is_admin;
    const write = manage || p.role === "editor";
    const extra = h("div", { style: "flex-basis:100%" });
    const act = (label, fn, cls = "secondary small") => h("button", { class: cls, type: "button", onclick: () => attempt(fn, extra), "aria-label": `${label} ${p.name}` }, label);
    return h("div", { class: "item", "data-project": p.name },
      h("a", { class: "name", href: "/knowledge", onclick: () => LB.setProject(p.id) }, p.name),
      h("span", { class: `badge ${p.status === "active" ? "ok" : ""}` }, p.status),
      p.role ? h("span", { class: "badge", title: "Your role in this project" }, `you: ${p.role}`) : null,
      p.tags.map((t) => h("span", { class: "badge" }, "#" + t)),
      p.description ? h("span", { class: "muted" }, p.description) : null,
      write ? h("div", { class: "actions" },
        act("Rename", async () => {
          const name = prompt("New name", p.name);
          if (name) { await api("PUT", `/projects/${p.id}`, { name }); await load(); }
        }),
        act(p.status === "active" ? "Archive" : "Unarchive", async () => {
          await api("PUT", `/projects/${p.id}`, { status: p.status === "active" ? "archived" : "active" });
          await load();
        }),
        manage ? act("Members", async () => LB.fill(extra, members(p))) : null,
        manage ? act("Delete", async () => {
          if (confirm(`Delete “${p.name}” and everything in it?`)) { await api("DELETE", `/projects/${p.id}`); await load(); }
        }, "danger small") : null) : null,
      extra);
  }

  function members(p) {
    const out = h("div", { role: "status" });
    const list = h("div");
    const roles = ["owner", "editor", "viewer"];
    const base = `/projects/${p.id}/members`;
    async function refresh() {
      const rows = await api("GET", "/console" + base);
      LB.fill(list, LB.table(["Member", "E-mail", "Role", ""], rows.map((m) => [
        m.user_id === LB.me.id ? `${m.username} (you)` : m.username, m.email || "",
        h("select", { "aria-label": `Role of ${m.username}`, onchange: (e) => attempt(async () => {
            await api("PUT", `${base}/${m.user_id}`, { role: e.target.value });
            LB.fill(out, h("div", { class: "alert ok" }, `${m.username} is now ${e.target.value}.`));
            await refresh();
          }, out).then(() => { if (out.querySelector(".alert:not(.ok)")) e.target.value = m.role; }) },
          roles.map((r) => h("option", { value: r, selected: r === m.role }, r))),
        h("button", { class: "danger small", type: "button", "aria-label": `Remove ${m.username}`, onclick: () => attempt(async () => {
            await api("DELETE", `${base}/${m.user_id}`);
            LB.fill(out, h("div", { class: "alert ok" }, `${m.username} was removed.`));
            await refresh();
          }, out) }, "Remove")])));
    }
    const form = h("form", { class: "row", "aria-label": `Add a member to ${p.name}`, onsubmit: (e) => {
        e.preventDefault();
        const f = LB.formData(e.target);
        attempt(async () => {
          const m = await api("POST", "/console" + base, { user: f.user.trim(), role: f.role });
          LB.fill(out, h("div", { class: "alert ok" }, `${m.username} is now ${m.role}.`));
          e.target.reset();
          await refresh();
        }, out);
      } },
      h("label", {}, "Username or e-mail", h("input", { type: "text", name: "user", required: true, autocomplete: "off" })),
      h("label", {}, "Role", h("select", { name: "role" }, ["viewer", "editor", "owner"].map((r) => h("option", { value: r }, r)))),
      h("button", { type: "submit" }, "Add member"));
    const panel = h("section", { class: "panel", "aria-label": `Members of ${p.name}` },
      h("h3", {}, `Members of ${p.name}`), list, form, out);
    attempt(refresh, out);
    return panel;
  }
  await load();
};
})();
