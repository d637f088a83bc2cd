// Knowledge: documents and versions (view, diff), upload (drag and drop, folders), crawl, git,
// and jobs whose progress updates live by polling GET /jobs/{id}.
"use strict";
(() => {
const { h, api, attempt } = LB;
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const BADGE = { succeeded: "ok", failed: "bad", cancelled: "bad", running: "run", queued: "run" };

// Line diff by longest common subsequence (documents shown here are small enough).
function diffLines(a, b) {
  const x = a.split("\n"), y = b.split("\n");
  if (x.length * y.length > 4e6) return [["del", "(too large to diff here)"]];
  const dp = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--)
    for (let j = y.length - 1; j >= 0; j--)
      dp[i][j] = x[i] === y[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < x.length && j < y.length) {
    if (x[i] === y[j]) { out.push(["same", "  " + x[i]]); i++; j++; }
    else if (dp[i + 1][j] >= dp[i][j + 1]) out.push(["del", "- " + x[i++]]);
    else out.push(["add", "+ " + y[j++]]);
  }
  while (i < x.length) out.push(["del", "- " + x[i++]]);
  while (j < y.length) out.push(["add", "+ " + y[j++]]);
  return out;
}
LB.diffLines = diffLines;

// Every file of a drop, folders walked recursively (webkitGetAsEntry).
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const files = [];
  async function walk(entry) {
    if (entry.isFile) files.push(await new Promise((ok, no) => entry.file(ok, no)));
    else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
        if (!batch.length) break;
        for (const child of batch) await walk(child);
      }
    }
  }
  for (const entry of entries) await walk(entry);
  return files;
}

LB.pages.knowledge = async (app) => {
  const picker = await LB.projectPicker(() => location.reload());
  app.append(picker.element);
  if (!picker.id) return;
  const projectId = picker.id;
  const access = await LB.role(projectId);
  const writable = LB.canWrite(access);
  const jobsBox = h("div", { "aria-live": "polite" });
  const jobsPager = h("div");
  const docsBox = h("div");
  const detail = h("div");
  const tracked = new Map(); // the jobs on show: one page of the list, updated live
  const labels = new Map(); // job id -> what it is about (file name, URL), known at submit time
  const wantedJob = new URLSearchParams(location.search).get("job");
  const jobsFilter = h("select", { id: "jobs-status", onchange: () => attempt(() => loadJobs(0), jobsBox) },
    ["", "queued", "running", "failed", "cancelled", "succeeded"].map((s) => h("option", { value: s }, s || "any status")));

  async function retry(job) {
    const fresh = await api("POST", `/jobs/${job.id}/retry`);
    if (labels.has(job.id)) labels.set(fresh.id, labels.get(job.id));
    LB.notice(`${job.kind} job queued again.`, "ok");
    jobsFilter.value = "";
    await loadJobs(0);
    wasBusy = true;
  }
  function jobRow(job) {
    const p = job.progress || { done: 0, total: 0 };
    const stage = p.stage ? ` · ${p.stage}` : "";
    const files = labels.has(job.id) ? ` · ${labels.get(job.id)}` : "";
    const err = h("div");
    const retryable = (job.status === "failed" || job.status === "cancelled") && !job.retried_as;
    return h("div", { class: `job${job.id === wantedJob ? " flash" : ""}`, id: `job-${job.id}`, "data-job": job.id, "data-status": job.status },
      h("span", { class: `badge ${BADGE[job.status] || ""}` }, job.status), " ",
      h("strong", {}, job.kind), h("span", { class: "muted" }, files, stage, ` · ${p.done}/${p.total || "?"} done · ${LB.when(job.created_at)}`),
      job.error ? h("div", { class: `alert${job.status === "failed" ? "" : " info"}` }, job.error) : null,
      job.retried_as ? h("p", { class: "muted" }, "Queued again as job ", h("code", {}, job.retried_as.slice(0, 8)), ".") : null,
      FINISHED.has(job.status) ? null : h("progress", { max: p.total || 1, value: p.done, "aria-label": `Progress of ${job.kind} job` }),
      writable && !FINISHED.has(job.status) ? h("button", { class: "danger small", type: "button", "aria-label": `Cancel ${job.kind} job`, onclick: () => attempt(async () => { track(await api("POST", `/jobs/${job.id}/cancel`)); }, err) }, "Cancel") : null,
      writable && retryable ? h("button", { class: "secondary small", type: "button", "aria-label": `Retry ${job.kind} job`, onclick: () => attempt(() => retry(job), err) }, "Retry") : null,
      err);
  }
  function renderJobs() {
    const jobs = [...tracked.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    LB.fill(jobsBox, jobs.length ? jobs.map(jobRow) : h("p", { class: "muted" }, "No jobs here."));
  }
  function track(job) { tracked.set(job.id, job); renderJobs(); }
  async function loadJobs(skip) {
    const status = jobsFilter.value ? `&status=${jobsFilter.value}` : "";
    const page = await api("GET", `/jobs?project_id=${projectId}&skip=${skip}&limit=10${status}`);
    tracked.clear();
    for (const job of page.items) tracked.set(job.id, job);
    if (wantedJob && !skip && !status && !tracked.has(wantedJob)) {
      const asked = await api("GET", `/jobs/${wantedJob}`).catch(() => null);
      if (asked && asked.project_id === projectId) tracked.set(asked.id, asked);
    }
    renderJobs();
    LB.fill(jobsPager, page.total > page.limit ? LB.pager(page, (at) => attempt(() => loadJobs(at), jobsBox), "Job pages") : null);
  }
  let wasBusy = false;
  async function poll() {
    const open = [...tracked.values()].filter((j) => !FINISHED.has(j.status));
    for (const job of open) {
      const fresh = await api("GET", `/jobs/${job.id}`).catch(() => null);
      if (fresh) tracked.set(fresh.id, fresh);
    }
    renderJobs();
    const busy = open.length > 0;
    if (wasBusy && ![...tracked.values()].some((j) => !FINISHED.has(j.status))) loadDocs(0);
    wasBusy = busy;
    if (document.body.contains(jobsBox)) setTimeout(poll, 1000);
  }

  async function upload(files) {
    if (!files.length) return;
    const body = new FormData();
    body.set("project_id", projectId);
    for (const file of files) body.append("file", file, file.webkitRelativePath || file.name);
    const response = await LB.send("POST", "/knowledge/upload", { body });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new LB.Problem(response.status, data);
    const accepted = Array.isArray(data) ? data : [data];
    for (const [index, item] of accepted.entries()) {
      if (!item.job_id) continue;
      labels.set(item.job_id, files[index] ? files[index].webkitRelativePath || files[index].name : "");
    }
    if (accepted.some((a) => a.job_id)) { jobsFilter.value = ""; await loadJobs(0); }
    const dupes = accepted.filter((a) => !a.job_id).length;
    LB.notice(`${accepted.length} file(s) accepted${dupes ? `, ${dupes} already present` : ""}.`, "ok");
    wasBusy = true;
  }

  if (writable) {
    const out = h("div");
    const fileInput = h("input", { type: "file", id: "files", multiple: true, onchange: (e) => attempt(() => upload([...e.target.files]), out) });
    const folderInput = h("input", { type: "file", id: "folder", webkitdirectory: true, onchange: (e) => attempt(() => upload([...e.target.files]), out) });
    const drop = h("div", { class: "drop", id: "dropzone",
      ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); },
      ondragleave: () => drop.classList.remove("over"),
      ondrop: (e) => { e.preventDefault(); drop.classList.remove("over"); attempt(async () => upload(await droppedFiles(e.dataTransfer)), out); } },
      h("p", {}, "Drop files or a folder here"),
      h("div", { class: "row", style: "justify-content:center" },
        h("label", { for: "files" }, "Choose files", fileInput),
        h("label", { for: "folder" }, "Choose a folder", folderInput)));
    const jobForm = (title, path, fields, build) => {
      const err = h("div");
      return h("form", { class: "panel", "aria-label": title, onsubmit: (e) => {
          e.preventDefault();
          const submit = async (body) => {
            const r = await api("POST", path, body);
            labels.set(r.job_id, body.url);
            jobsFilter.value = "";
            await loadJobs(0);
            LB.fill(err);
            wasBusy = true;
          };
          attempt(() => submit(build(LB.formData(e.target))), err);
        } }, h("h2", {}, title), fields, err, h("button", { type: "submit" }, "Start"));
    };
    const list = (text) => (text || "").split(",").map((s) => s.trim()).filter(Boolean);
    app.append(h("div", { class: "grid" },
      h("section", { class: "panel", "aria-labelledby": "upload-h" }, h("h2", { id: "upload-h" }, "Upload"), drop, out),
      jobForm("Crawl a website", "/knowledge/crawl", [
        h("label", {}, "URL", h("input", { type: "url", name: "url", required: true, placeholder: "https://docs.example.com" })),
        h("div", { class: "row" },
          h("label", {}, "Depth", h("input", { type: "number", name: "max_depth", min: 0, max: 5, value: 1 })),
          h("label", {}, "Max pages", h("input", { type: "number", name: "max_pages", min: 1, value: 50 })))],
        (f) => ({ project_id: projectId, url: f.url, max_depth: Number(f.max_depth), max_pages: Number(f.max_pages) })),
      jobForm("Import a git repository", "/knowledge/git", [
        h("label", {}, "Repository URL", h("input", { type: "url", name: "url", required: true, placeholder: "https://github.com/org/repo.git" })),
        h("div", { class: "row" },
          h("label", {}, "Ref", h("input", { type: "text", name: "ref", placeholder: "main" })),
          h("label", {}, "Include (globs)", h("input", { type: "text", name: "include", placeholder: "docs/**,*.md" })))],
        (f) => ({ project_id: projectId, url: f.url, ref: f.ref || null, include: list(f.include) }))));
  } else {
    app.append(h("p", { class: "alert info" }, `Your role here is ${access.role}: you can read and ask, not change.`));
  }
  app.append(h("section", { class: "panel", "aria-labelledby": "jobs-h" }, h("h2", { id: "jobs-h" }, "Jobs"),
      h("div", { class: "picker" }, h("label", { for: "jobs-status" }, "Show jobs"), jobsFilter), jobsBox, jobsPager),
    h("section", { class: "panel", "aria-labelledby": "docs-h" }, h("h2", { id: "docs-h" }, "Documents"), docsBox), detail);

  async function loadDocs(skip) {
    const page = await api("GET", `/documents?project_id=${projectId}&skip=${skip}&limit=20`);
    LB.fill(docsBox,
      page.items.length ? LB.table(["Name", "Type", "Version", "Status", "Updated", ""], page.items.map((d) => [
        d.name, d.type, d.version,
        h("span", { class: `badge ${d.status === "ready" ? "ok" : d.status === "failed" ? "bad" : ""}` }, d.status),
        LB.when(d.updated_at),
        h("button", { class: "secondary small", type: "button", "aria-label": `Versions of ${d.name}`, onclick: () => attempt(() => showDoc(d), detail) }, "Versions")]))
        : h("p", { class: "muted" }, "No documents yet."),
      LB.pager(page, (at) => attempt(() => loadDocs(at), docsBox), "Document pages"));
  }

  async function showDoc(doc) {
    const versions = (await api("GET", `/documents/${doc.id}/versions?limit=500`)).items;
    const view = h("div");
    const options = () => versions.map((v) => h("option", { value: v.version }, v.version));
    const left = h("select", { name: "from" }, options());
    const right = h("select", { name: "to" }, options());
    if (versions.length > 1) { left.value = versions[versions.length - 1].version; right.value = versions[0].version; }
    const content = async (version) => (await api("GET", `/documents/${doc.id}?version=${encodeURIComponent(version)}`)).content || "";
    LB.fill(detail, h("section", { class: "panel", "aria-labelledby": "doc-h", id: "doc-detail" },
      h("h2", { id: "doc-h" }, doc.name),
      LB.table(["Version", "Size", "Created", ""], versions.map((v) => [v.version, `${v.size_bytes} B`, LB.when(v.created_at),
        h("button", { class: "secondary small", type: "button", onclick: () => attempt(async () => LB.fill(view, h("h3", {}, `Version ${v.version}`), h("pre", { class: "doc-content", tabindex: 0 }, await content(v.version))), view) }, `View ${v.version}`)])),
      h("form", { class: "row", "aria-label": "Compare versions", onsubmit: (e) => {
          e.preventDefault();
          attempt(async () => {
            const [a, b] = await Promise.all([content(left.value), content(right.value)]);
            LB.fill(view, h("h3", {}, `Changes from ${left.value} to ${right.value}`),
              h("pre", { class: "diff doc-content", tabindex: 0 }, diffLines(a, b).map(([kind, line]) => h("span", { class: kind }, line))));
          }, view);
        } },
        h("label", {}, "From", left), h("label", {}, "To", right), h("button", { type: "submit", class: "secondary" }, "Show changes")),
      view));
    detail.scrollIntoView({ behavior: "smooth" });
  }

  await loadJobs(0);
  await loadDocs(0);
  if (wantedJob) { const row = document.getElementById(`job-${wantedJob}`); if (row) row.scrollIntoView({ block: "center" }); }
  poll();
};
})();
