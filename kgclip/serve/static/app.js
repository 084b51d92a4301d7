// kgclip serve: the little JavaScript the pages need. Data from the server is only ever shown with textContent.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function status(message, isError) {
  const box = $("status");
  if (!box) return;
  box.textContent = message || "";
  box.className = isError ? "status error" : "status";
}

async function call(path, body, options) {
  const init = {method: body === undefined ? "GET" : "POST", headers: {"X-CSRF-Token": csrf()},
                credentials: "same-origin"};
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const response = await fetch(path, init);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error((data && data.error) || String(data) || response.statusText);
  return (options && options.raw) ? {data, type} : data;
}

function guard(fn) {
  return async (event) => {
    if (event && event.preventDefault) event.preventDefault();
    try { await fn(event); } catch (err) { status(err.message, true); }
  };
}

// ------------------------------------------------------------------ shared pieces
function caseCard(hit, onOpen) {
  const card = el("figure", null, {class: "card", "data-case": hit.case_id});
  const img = el("img", null, {alt: hit.case_id, loading: "lazy", src: "/api/case/" + encodeURIComponent(hit.case_id) + "/image.png"});
  card.append(img, el("figcaption", hit.case_id + " · " + hit.score.toFixed(2)));
  if (hit.metadata && hit.metadata.matched_through) card.append(el("small", "matched: " + hit.metadata.matched_through));
  if (hit.metadata && hit.metadata.opposes_query) card.append(el("small", "says the opposite: " + hit.metadata.opposes_query, {class: "abstain"}));
  card.append(el("small", hit.text.slice(0, 160)));
  card.addEventListener("click", () => onOpen(hit.case_id));
  return card;
}

async function openCitation(caseId) {
  const panel = $("citation");
  if (!panel) { location.href = "/search"; return; }
  const data = await call("/api/case/" + encodeURIComponent(caseId));
  $("citeid").textContent = data.case_id;
  $("citeimg").src = "/api/case/" + encodeURIComponent(caseId) + "/image.png";
  $("citetext").textContent = data.text;
  panel.hidden = false;
}

// ------------------------------------------------------------------ scan page
let upload = sessionStorage.getItem("kgclip-upload");

async function sendFile(file) {
  status("Reading " + (file.size / 1024).toFixed(0) + " KB…");
  const form = new FormData();
  form.append("file", file, "upload");  // the file name is never sent: it can carry a patient's name
  const data = await call("/api/upload", form);
  upload = data.upload;
  sessionStorage.setItem("kgclip-upload", upload);
  const select = $("window");
  select.replaceChildren(...data.windows.map((w) => el("option", w === "auto" ? "as read" : w, {value: w})));
  $("scan").src = "/api/upload/" + upload + "/image.png?window=auto";
  $("scanmeta").textContent = Object.entries(data.meta).map(([k, v]) => k + ": " + v).join(" · ");
  $("viewer").hidden = false;
  status("Scan ready. Ask a question or draft a report.");
}

function renderAnswer(a) {
  const box = $("answer");
  box.replaceChildren();
  if (a.abstained) {
    box.append(el("p", "Cannot answer: " + a.abstain_reason, {class: "abstain", id: "answertext"}));
  } else {
    const p = el("p", null, {id: "answertext"});
    p.append(el("b", a.text), el("span", " (" + Math.round(a.confidence * 100) + "% calibrated confidence" + (a.flags.source ? ", from " + a.flags.source : "") + ")", {class: "muted"}));
    box.append(p);
    if (a.candidates.length > 1) box.append(el("p", "Other candidates: " + a.candidates.slice(1).map((c) => c[0] + " " + Math.round(c[1] * 100) + "%").join(", "), {class: "muted"}));
  }
  if (a.concepts.length) box.append(el("h4", "Linked concepts"), el("p", a.concepts.map((c) => (c.negated ? "no " : "") + c.name).join(", ")));
  if (a.kg_facts.length) { const ul = el("ul"); a.kg_facts.slice(0, 8).forEach((f) => ul.append(el("li", f))); box.append(el("h4", "Facts"), ul); }
  const gallery = el("div", null, {class: "gallery", id: "evidence"});
  a.similar_cases.forEach((h) => gallery.append(caseCard(h, guard(() => openCitation(h.case_id)))));
  box.append(el("h4", "Similar cases"), gallery);
  box.hidden = false;
}

function sentenceItem(s) {
  const li = el("li", null, {class: "sentence"});
  const text = el("span", s.text, {class: "text", contenteditable: "true", spellcheck: "true"});
  li.dataset.case = s.case_id;
  li.dataset.cases = JSON.stringify(s.cases || []);
  li.dataset.facts = JSON.stringify(s.facts || []);
  const chips = (s.cases && s.cases.length ? s.cases : [s.case_id]).filter(Boolean).map((caseId) => {  // none: written by hand
    const chip = el("button", caseId, {type: "button", class: "chip", title: "open the cited case"});
    chip.addEventListener("click", guard(() => openCitation(caseId)));
    return chip;
  });
  const up = el("button", "↑", {type: "button", class: "tool", title: "move up"});
  up.addEventListener("click", () => li.previousElementSibling && li.parentNode.insertBefore(li, li.previousElementSibling));
  const down = el("button", "↓", {type: "button", class: "tool", title: "move down"});
  down.addEventListener("click", () => li.nextElementSibling && li.parentNode.insertBefore(li.nextElementSibling, li));
  const del = el("button", "✕", {type: "button", class: "tool", title: "remove"});
  del.addEventListener("click", () => li.remove());
  li.append(text, " ", ...chips, up, down, del);
  if (s.facts && s.facts.length) li.append(el("div", "rests on: " + s.facts.join("; "), {class: "muted facts"}));
  return li;
}

function collect(listId) {
  return [...$(listId).querySelectorAll("li.sentence")].map((li) => ({text: li.querySelector(".text").textContent.trim(), case_id: li.dataset.case,
    cases: JSON.parse(li.dataset.cases || "[]"), facts: JSON.parse(li.dataset.facts || "[]")}));
}

// Export and accept need a report: while no sentence has text (nothing drafted, all removed, or a hand-written
// sentence still empty) they are disabled, so an empty draft cannot be exported or accepted into the archive.
function syncDraftActions() {
  const written = [...document.querySelectorAll("#findings li.sentence .text, #impression li.sentence .text")]
    .some((node) => node.textContent.trim());
  for (const id of ["exporttext", "exportfhir", "acceptbtn"]) {
    $(id).disabled = !written;
    $(id).title = written ? "" : "nothing to " + (id === "acceptbtn" ? "accept" : "export") + ": draft or write a sentence first";
  }
}

function renderDraft(d) {
  $("findings").replaceChildren(...d.findings.map(sentenceItem));
  $("impression").replaceChildren(...d.impression.map(sentenceItem));
  $("exported").hidden = true;
  $("draft").hidden = false;
  // Why nothing was drafted ("no similar chest XR cases ..."), in the panel where the report would be, as the text
  // export and the notebook say NOT DRAFTED; the radiologist can still write sentences by hand.
  const notice = $("draftnotice");
  notice.hidden = !d.notice;
  notice.textContent = d.notice ? "Not drafted: " + d.notice + ". Write findings by hand, or pick another region." : "";
  syncDraftActions();
  // The draft's confidence (the calibrated agreement of its similar cases), as the CLI, text and FHIR exports give
  // it; none for a notice that nothing could be drafted, nor without the KG (no concepts to compare cases by).
  const drafted = d.findings.length || d.impression.length || d.abstained;
  const conf = $("draftconf");
  conf.hidden = d.confidence === null || d.confidence === undefined || !drafted;
  conf.className = d.abstained ? "abstain" : "muted";
  conf.textContent = conf.hidden ? "" : (d.abstained ? "Declined: " : "") + "draft confidence " + Math.round(d.confidence * 100) +
    "% (how well the similar cases' findings agree, calibrated)" + (d.abstained ? ", below the workspace's threshold; review the similar cases" : "");
  const region = d.region && d.region.length ? " (" + d.region.join(", ") + (d.modality ? ", " + d.modality : "") + ")" : "";
  status(d.notice ? "Not drafted: the draft panel says why." : (d.findings.length || d.impression.length) ? "Draft ready" + region + ": edit, re-order or remove sentences, then accept." : "No findings could be drafted from similar cases.");
}

function needUpload() { if (!upload) throw new Error("upload a scan first"); }

function initScan() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", guard(async (e) => { drop.classList.remove("over"); if (e.dataTransfer.files[0]) await sendFile(e.dataTransfer.files[0]); }));
  $("file").addEventListener("change", guard(async () => { if ($("file").files[0]) await sendFile($("file").files[0]); }));
  $("window").addEventListener("change", () => { $("scan").src = "/api/upload/" + upload + "/image.png?window=" + encodeURIComponent($("window").value); });
  $("askform").addEventListener("submit", guard(async () => {
    needUpload(); status("Thinking…");
    renderAnswer(await call("/api/ask", {upload, question: $("question").value}));
    status("");
  }));
  $("draftbtn").addEventListener("click", guard(async () => { needUpload(); status("Drafting…"); renderDraft(await call("/api/draft", {upload, region: $("region").value})); }));
  const addSentence = (listId) => () => {
    $("draft").hidden = false;
    const li = sentenceItem({text: "", case_id: "", cases: [], facts: []});
    $(listId).append(li);
    li.querySelector(".text").focus();
  };
  for (const list of ["findings", "impression"]) {
    $(list).addEventListener("input", syncDraftActions);
    new MutationObserver(syncDraftActions).observe($(list), {childList: true});
  }
  syncDraftActions();
  $("addfinding").addEventListener("click", addSentence("findings"));
  $("addimpression").addEventListener("click", addSentence("impression"));
  call("/api/workspace").then((info) => {
    info.body_parts.forEach((part) => $("region").append(el("option", part.toLowerCase(), {value: part.toLowerCase()})));
  }).catch(() => {});
  const exportAs = (format) => guard(async () => {
    const out = await call("/api/export", {format, findings: collect("findings"), impression: collect("impression")}, {raw: true});
    $("exported").textContent = typeof out.data === "string" ? out.data : JSON.stringify(out.data, null, 2);
    $("exported").hidden = false;
  });
  $("exportfhir").addEventListener("click", exportAs("fhir"));
  $("exporttext").addEventListener("click", exportAs("text"));
  $("acceptbtn").addEventListener("click", guard(async () => {
    needUpload();
    const data = await call("/api/accept", {upload, author: $("author").value, region: $("region").value, findings: collect("findings"), impression: collect("impression")});
    status("Accepted as case " + data.case_id + "; it is now searchable.");
  }));
  $("citeclose").addEventListener("click", () => { $("citation").hidden = true; });
  if (document.body.dataset.readOnly === "true") $("acceptbtn").parentNode.hidden = true;
  if (upload) {
    $("scan").src = "/api/upload/" + upload + "/image.png?window=auto";
    $("scan").onerror = () => { upload = null; sessionStorage.removeItem("kgclip-upload"); $("viewer").hidden = true; };
    $("viewer").hidden = false;
  }
}

// ------------------------------------------------------------------ search page
function initSearch() {
  $("searchform").addEventListener("submit", guard(async () => {
    const kind = $("searchkind").value;
    const body = {k: 12, filters: {modality: $("fmodality").value, body_part: $("fbody").value}};
    if (kind === "image") { needUpload(); body.upload = upload; } else body[kind] = $("searchq").value;
    status("Searching…");
    const data = await call("/api/search", body);
    $("gallery").replaceChildren(...data.hits.map((h) => caseCard(h, guard(() => openCitation(h.case_id)))));
    status(data.hits.length + " cases" + (data.expansion ? " · searched " + data.expansion : ""));
  }));
}

// ------------------------------------------------------------------ curation
function formData(form) {
  const data = {};
  new FormData(form).forEach((v, k) => { data[k] = String(v); });
  return data;
}

async function loadChangelog(onto) {
  const data = await call("/api/ontology/" + encodeURIComponent(onto) + "/changelog");
  $("changelog").replaceChildren(...data.entries.slice(0, 30).map((e) => el("li", "#" + e.seq + " " + e.summary + (e.author ? " — " + e.author : "") + (e.reason ? " (" + e.reason + ")" : ""))));
}

async function loadSuggestions(onto) {
  const data = await call("/api/ontology/" + encodeURIComponent(onto) + "/suggestions");
  $("reviewnote").textContent = data.note || (data.total_pending + " pending suggestions (computed by the link predictor and the aligner; nothing is applied until accepted)");
  const readOnly = document.body.dataset.readOnly === "true";
  $("suggestions").replaceChildren(...data.pending.slice(0, 30).map((s) => {
    const li = el("li", null, {"data-n": String(s.n)});
    li.append(el("span", "#" + s.n + " " + (s.source_name || s.source) + " —" + s.kind + "→ " + (s.target_name || s.target) + " "),
              el("span", "(" + s.method + ", " + s.score + (s.why ? "; " + s.why : "") + ")", {class: "muted"}));
    if (!readOnly) {
      for (const decision of ["accept", "reject"]) {
        const b = el("button", decision, {type: "button", class: "tool " + decision});
        b.addEventListener("click", guard(async () => {
          const out = await call("/api/ontology/" + encodeURIComponent(onto) + "/review", {n: s.n, decision, author: $("reviewauthor").value});
          status((decision === "accept" ? "Accepted: " : "Rejected: ") + out.entries.map((x) => x.summary).join("; "));
          await loadSuggestions(onto);
          await loadChangelog(onto);
        }));
        li.append(" ", b);
      }
    }
    return li;
  }));
}

function initCurate() {
  const onto = () => $("onto").value;
  $("conceptsearch").addEventListener("submit", guard(async () => {
    const data = await call("/api/ontology/" + encodeURIComponent(onto()) + "/search?q=" + encodeURIComponent($("conceptq").value));
    $("concepthits").replaceChildren(...data.hits.map((c) => {
      const li = el("li");
      li.append(el("a", c.name, {href: "/curate/" + encodeURIComponent(onto()) + "/" + encodeURIComponent(c.id)}), " ", el("span", c.id, {class: "muted"}));
      return li;
    }));
    status(data.hits.length + " concepts");
  }));
  if ($("addconcept")) $("addconcept").addEventListener("submit", guard(async (e) => {
    const data = await call("/api/ontology/" + encodeURIComponent(onto()) + "/edit/add_concept", formData(e.target));
    status("Added: " + data.entries[0].summary);
    await loadChangelog(onto());
  }));
  if ($("undoform")) $("undoform").addEventListener("submit", guard(async () => {
    const data = await call("/api/ontology/" + encodeURIComponent(onto()) + "/edit/undo", {n: 1, author: $("undoauthor").value});
    status("Undone: " + data.entries.map((x) => x.summary).join("; "));
    await loadChangelog(onto());
  }));
  $("validatebtn").addEventListener("click", guard(async () => {
    const data = await call("/api/ontology/" + encodeURIComponent(onto()) + "/validate");
    status(data.summary, !data.ok);
  }));
  $("onto").addEventListener("change", guard(() => Promise.all([loadChangelog(onto()), loadSuggestions(onto())])));
  if (onto()) Promise.all([loadChangelog(onto()), loadSuggestions(onto())]).catch((err) => status(err.message, true));
}

function initConcept() {
  const holder = document.querySelector("[data-onto]");
  if (!holder) return;
  const onto = holder.dataset.onto;
  document.querySelectorAll("form.edit").forEach((form) => form.addEventListener("submit", guard(async () => {
    const data = await call("/api/ontology/" + encodeURIComponent(onto) + "/edit/" + form.dataset.op, formData(form));
    status("Saved: " + data.entries[0].summary);
    setTimeout(() => location.reload(), 600);
  })));
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "scan") initScan();
  if (page === "search") initSearch();
  if (page === "curate") { if ($("conceptsearch")) initCurate(); else initConcept(); }
});
