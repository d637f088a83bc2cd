// The audit's checks, run in the page (see audit.py): one object, one function per check.
({
contrast: () => {
  const parse = (value) => {
    const m = value && value.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = (c) => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const opacity = (el) => { let o = 1; for (let n = el; n; n = n.parentElement) o *= Number(getComputedStyle(n).opacity); return o; };
  function background(el) {
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  }
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 && s.visibility === "visible";
  };
  const describe = (el) => {
    const text = (el.innerText || el.value || el.placeholder || "").trim().slice(0, 40);
    return `${el.tagName.toLowerCase()}${el.className ? "." + String(el.className).split(" ").join(".") : ""} "${text}"`;
  };
  const problems = [];
  function check(el, color, what) {
    if (el.closest(":disabled, [aria-disabled=true], option")) return;
    const s = getComputedStyle(el);
    const fg = parse(color);
    if (!fg) return;
    const bg = background(el);
    const shown = over([fg[0], fg[1], fg[2], fg[3] * opacity(el)], bg);
    const [a, b] = [luminance(shown), luminance(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    const needed = large ? 3 : 4.5;
    if (ratio + 1e-6 < needed) {
      problems.push(`contrast ${ratio.toFixed(2)} < ${needed} for ${what} of ${describe(el)}: ${color} on rgb(${bg.slice(0, 3).map(Math.round)})`);
    }
  }
  for (const el of document.body.querySelectorAll("*")) {
    if (["SCRIPT", "STYLE", "OPTION", "NOSCRIPT"].includes(el.tagName) || !visible(el)) continue;
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (ownText) check(el, getComputedStyle(el).color, "text");
    if (["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName) && el.type !== "file" && el.type !== "checkbox") {
      if (el.value) check(el, getComputedStyle(el).color, "value");
      if (el.placeholder) check(el, getComputedStyle(el, "::placeholder").color, "placeholder");
    }
  }
  return problems;
},

names: () => {
  const problems = [];
  const text = (el) => (el ? (el.innerText || el.textContent || "").trim() : "");
  for (const el of document.querySelectorAll("input, select, textarea, button")) {
    if (el.type === "hidden") continue;
    const byIds = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
      .map((id) => text(document.getElementById(id))).join(" ");
    const labels = [...(el.labels || [])].map(text).join(" ");
    const own = el.tagName === "BUTTON" ? text(el) : ["submit", "button", "reset"].includes(el.type) ? el.value : "";
    const name = (el.getAttribute("aria-label") || byIds || labels || own || el.title || "").trim();
    if (!name) problems.push(`no accessible name: ${el.outerHTML.slice(0, 120)}`);
  }
  return problems;
},

focus: () => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  const shadow = s.boxShadow && s.boxShadow !== "none";
  const r = el.getBoundingClientRect();
  return {
    key: el.id || el.outerHTML.slice(0, 80) + ":" + Array.prototype.indexOf.call(document.querySelectorAll("*"), el),
    shown: outline || shadow,
    visible: r.width > 0 && r.height > 0,
    what: el.outerHTML.slice(0, 100),
  };
},
})
