// Trellis pages: progressive enhancement. Forms marked data-api send JSON to the Trellis API
// (the same endpoints the CLI uses) with the session's CSRF token; upload forms stream files
// with a progress bar; workspace tables refresh their status. No inline scripts, no other origin.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

async function callApi(method, path, body) {
  const headers = { "X-CSRF-Token": csrf(), Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const detail = data && (data.detail || data.title);
    throw new Error(detail || `${response.status} ${response.statusText}`);
  }
  return data;
}

function setNested(target, dotted, value) {
  const keys = dotted.split(".");
  let at = target;
  for (const key of keys.slice(0, -1)) at = at[key] ??= {};
  at[keys[keys.length - 1]] = value;
}

// One line per item: "subject role".
function parseMembers(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const [subject, role = "researcher"] = line.split(/\s+/);
    return { subject, role };
  });
}

// One line per dataset: "name: description".
function parseDatasets(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const at = line.indexOf(":");
    return at < 0 ? { name: line } : { name: line.slice(0, at).trim(), description: line.slice(at + 1).trim() };
  });
}

function formBody(form) {
  if (form.dataset.kind === "votes") {
    const votes = [];
    for (const fieldset of form.querySelectorAll("fieldset[data-file]")) {
      const chosen = fieldset.querySelector('input[type="radio"]:checked');
      const comment = fieldset.querySelector("textarea")?.value ?? "";
      if (chosen) votes.push({ file: fieldset.dataset.file, vote: chosen.value, comment });
    }
    return { votes };
  }
  const body = {};
  let any = false;
  for (const field of form.elements) {
    if (!field.name || field.disabled || field.type === "submit" || "pathOnly" in field.dataset) continue;
    // Checkboxes sharing a name with data-kind="checklist": a list of the checked values
    // (empty when none is checked, so that the server can say so).
    if (field.dataset.kind === "checklist") {
      const list = (body[field.name] ??= []);
      if (field.checked) list.push(field.value);
      any = true;
      continue;
    }
    if ((field.type === "radio" || field.type === "checkbox") && !field.checked) continue;
    const raw = field.value;
    const kind = field.dataset.kind;
    let value = raw;
    if (kind === "number") { if (raw === "") continue; value = Number(raw); }
    else if (kind === "list") value = raw.split(",").map((s) => s.trim()).filter(Boolean);
    else if (kind === "members") value = parseMembers(raw);
    else if (kind === "datasets") value = parseDatasets(raw);
    else if (raw === "" && !field.required) continue;
    setNested(body, field.name, value);
    any = true;
  }
  return any ? body : undefined;
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(values[key] ?? ""));
}

function showError(form, message) {
  const box = form.querySelector(".form-error");
  if (box) { box.textContent = message; box.hidden = false; box.focus?.(); }
  else window.alert(message);
}

async function submitApiForm(form, submitter) {
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const box = form.querySelector(".form-error");
  if (box) box.hidden = true;
  const values = {};
  for (const field of form.elements) if (field.name) values[field.name] = field.value;
  const path = fill(form.getAttribute("action"), values);
  if (submitter) submitter.disabled = true;
  try {
    const result = await callApi(form.dataset.api, path, formBody(form));
    // data-show: a secret shown once (a new access token) in the named section, not a new page.
    if (form.dataset.show) {
      const shown = document.getElementById(form.dataset.show);
      shown.querySelector("code").textContent = result.token;
      shown.hidden = false;
      form.reset();
      shown.scrollIntoView();
      return;
    }
    const next = form.dataset.next;
    if (!next || next === "reload") window.location.reload();
    else window.location.assign(fill(next, { ...values, ...(result ?? {}) }));
  } catch (error) {
    showError(form, error.message);
  } finally {
    if (submitter) submitter.disabled = false;
  }
}

// Each file goes up as one streamed PUT; the bar shows the bytes sent of all files.
function upload(form) {
  const input = form.querySelector('input[type="file"]');
  const bar = form.querySelector("progress");
  const status = form.querySelector("#upload-status");
  const files = Array.from(input.files);
  const total = files.reduce((n, f) => n + f.size, 0) || 1;
  let done = 0;
  bar.hidden = false;
  const sendNext = (index) => {
    if (index === files.length) { window.location.reload(); return; }
    const file = files[index];
    const request = new XMLHttpRequest();
    request.open("PUT", form.getAttribute("action") + encodeURIComponent(file.name));
    request.setRequestHeader("X-CSRF-Token", csrf());
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.onprogress = (event) => {
      const percent = Math.round(((done + event.loaded) / total) * 100);
      bar.value = percent;
      status.textContent = `Uploading ${file.name}: ${percent}%`;
    };
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) {
        done += file.size;
        sendNext(index + 1);
      } else {
        let detail = request.statusText;
        try { detail = JSON.parse(request.responseText).detail || detail; } catch { /* not JSON */ }
        showError(form, `${file.name}: ${detail}`);
      }
    };
    request.onerror = () => showError(form, `${file.name}: the upload was interrupted`);
    request.send(file);
  };
  sendNext(0);
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.matches("form[data-api]")) {
    event.preventDefault();
    submitApiForm(form, event.submitter);
  } else if (form.matches("form[data-upload]")) {
    event.preventDefault();
    upload(form);
  }
});

// Workspace status: refreshed every few seconds while the page is open.
function pollWorkspaces(table) {
  const refresh = async () => {
    try {
      const workspaces = await callApi("GET", table.dataset.poll);
      for (const workspace of workspaces) {
        const row = table.querySelector(`tr[data-workspace="${CSS.escape(workspace.name)}"]`);
        if (!row) continue;
        const phase = workspace.phase ?? "Pending";
        const badge = row.querySelector(".phase .badge");
        if (badge && badge.textContent !== phase) {
          badge.textContent = phase;
          badge.className = "badge " + ({ Running: "good", Failed: "bad", Stopped: "" }[phase] ?? "wait");
        }
        const open = row.querySelector("a.open");
        if (open) open.hidden = phase !== "Running";
      }
    } catch { /* the next round tries again */ }
  };
  setInterval(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table[data-poll]")) pollWorkspaces(table);
});
