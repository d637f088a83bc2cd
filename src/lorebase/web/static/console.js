// Lorebase console core: DOM helper, API client (cookie session + CSRF header), session, nav.
"use strict";
const API = "/api/v1";
const LB = (window.LB = { me: null, pages: {} });

// h("div", {class: "x", onclick: fn}, child, "text") -> element; text is never parsed as HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}
LB.h = h;

// Replace an element's children; arrays (from .map) are flattened, empty values skipped.
LB.fill = (el, ...children) => {
  el.replaceChildren();
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
};

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

class Problem extends Error {
  constructor(status, body) {
    const detail = (body && (body.detail || body.title)) || `request failed (${status})`;
    const fields = (body && body.errors) || [];
    const extra = fields.map((e) => `${(e.loc || []).slice(1).join(".") || e.field}: ${e.msg}`);
    super(extra.length && detail === "Unprocessable Content" ? extra.join("; ") : detail);
    this.status = status;
    this.body = body;
  }
}
LB.Problem = Problem;

// One refresh at a time: a refresh token is single-use, and a second concurrent use would be
// taken for a stolen token (the server then revokes the whole session).
let refreshing = null;
function refreshSession() {
  refreshing ??= fetch("/console/session/refresh", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": cookie("lb_csrf") },
  }).then((response) => response.ok, () => false).finally(() => setTimeout(() => { refreshing = null; }, 0));
  return refreshing;
}

// Raw fetch with the CSRF header on writes and one silent refresh on an expired access token.
async function send(method, path, { body, headers = {}, retry = true } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (method !== "GET") init.headers["X-CSRF-Token"] = cookie("lb_csrf");
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path.startsWith("/console") ? path : API + path, init);
  if (response.status === 401 && retry && (await refreshSession())) {
    return send(method, path, { body, headers, retry: false });
  }
  return response;
}
LB.send = send;

async function api(method, path, body) {
  const response = await send(method, path, { body });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Problem(response.status, data);
  return data;
}
LB.api = api;

function notice(message, kind = "info") {
  const box = document.getElementById("notice");
  LB.fill(box, message ? h("div", { class: `alert ${kind}` }, message) : "");
}
LB.notice = notice;

// Run an action; show its problem detail as a readable message instead of failing silently.
async function attempt(action, where) {
  try {
    return await action();
  } catch (error) {
    const message = error instanceof Problem ? error.message : "Something went wrong: " + error;
    if (where) LB.fill(where, h("div", { class: "alert", role: "alert" }, message));
    else notice(message, "");
    return undefined;
  }
}
LB.attempt = attempt;

LB.formData = (form) => Object.fromEntries(new FormData(form).entries());
LB.when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

// The chosen project is shared by the Knowledge, Ask and Tasks pages.
LB.projectId = () => localStorage.getItem("lb.project") || "";
LB.setProject = (id) => localStorage.setItem("lb.project", id);
LB.projects = async () => (await api("GET", "/projects?limit=500")).items;

LB.projectPicker = async function (onChange) {
  const projects = await LB.projects();
  if (!projects.length) {
    return { element: h("div", { class: "alert info" }, "No project yet. ", h("a", { href: "/projects" }, "Create one first.")), id: "" };
  }
  const asked = new URLSearchParams(location.search).get("project");
  if (asked && !projects.some((p) => p.id === asked)) {
    const one = await api("GET", `/projects/${asked}`).catch(() => null);
    if (one) projects.unshift(one);
  }
  if (asked) LB.setProject(asked);
  let current = LB.projectId();
  if (!projects.some((p) => p.id === current)) current = projects[0].id;
  LB.setProject(current);
  const select = h("select", { id: "project-picker", name: "project",
    onchange: (e) => { LB.setProject(e.target.value); history.replaceState(null, "", location.pathname); onChange(e.target.value); } },
    projects.map((p) => h("option", { value: p.id, selected: p.id === current }, p.name)));
  return { element: h("div", { class: "picker" }, h("label", { for: "project-picker" }, "Project"), select), id: current };
};

LB.role = async (projectId) => api("GET", `/console/projects/${projectId}/role`);
LB.canWrite = (access) => access.is_admin || access.role === "owner" || access.role === "editor";

// A table in a box that scrolls sideways on a narrow screen (the page itself never does).
LB.table = (headers, rows, caption) => h("div", { class: "table-wrap" },
  h("table", {}, caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));

LB.pager = function (page, onMove, label = "Pages") {
  const last = page.skip + page.items.length;
  return h("nav", { class: "pager", "aria-label": label },
    h("button", { class: "secondary small", disabled: page.skip === 0, onclick: () => onMove(Math.max(0, page.skip - page.limit)) }, "Previous"),
    h("span", { class: "muted" }, page.total ? `${page.skip + 1}–${last} of ${page.total}` : "none"),
    h("button", { class: "secondary small", disabled: last >= page.total, onclick: () => onMove(page.skip + page.limit) }, "Next"));
};

async function signOut() {
  await send("DELETE", "/console/session");
  location.href = "/login";
}

async function boot() {
  const page = document.body.dataset.page;
  const app = document.getElementById("app");
  if (page !== "login") {
    const response = await send("GET", "/auth/me");
    if (!response.ok) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
      return;
    }
    LB.me = await response.json();
    document.getElementById("nav").hidden = false;
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
      if (link.dataset.nav === "admin") link.hidden = !LB.me.is_admin;
    }
    LB.fill(document.getElementById("who"), 
      h("span", {}, LB.me.username, LB.me.is_admin ? " (admin)" : ""),
      h("button", { class: "small", onclick: signOut }, "Sign out"));
  }
  LB.fill(app);
  await attempt(() => LB.pages[page](app));
}
document.addEventListener("DOMContentLoaded", () => setTimeout(boot, 0));
