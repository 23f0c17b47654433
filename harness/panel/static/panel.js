// myna-hil control panel: renders what the server pushes (server-sent events) and posts
// one request per click. Text goes in through textContent only (never innerHTML).
"use strict";

const state = { slots: [], log: [], options: null, filter: "" };

// The token: from the first URL (then taken out of the address bar), kept for this tab.
const query = new URLSearchParams(location.search);
const token = query.get("token") || sessionStorage.getItem("mynaPanelToken") || "";
if (query.get("token")) {
  sessionStorage.setItem("mynaPanelToken", token);
  history.replaceState(null, "", "/");
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(text, bad) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.style.color = bad ? "#ffb4ab" : "";
}

async function control(slot, action, args) {
  say(`${action}…`);
  try {
    const response = await fetch(`/api/slots/${slot}/control`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Panel-Token": token },
      body: JSON.stringify({ action, ...(args || {}) }),
    });
    const answer = await response.json().catch(() => ({ error: response.statusText }));
    say(response.ok ? answer.text : `${action}: ${answer.error}`, !response.ok);
  } catch (err) {
    say(`${action}: ${err}`, true);
  }
}

function button(slot, action, label, args, extra) {
  return el("button", { "data-slot": slot, "data-action": action, ...(extra || {}),
                        onclick: () => control(slot, action, args) }, label);
}

function badge(on, yes, no) {
  return el("span", { class: `badge ${on ? "on" : "off"}` }, on ? yes : no);
}

function pinRow(s, pin) {
  const tries = [];
  for (let n = 0; n <= pin.max; n++) {
    tries.push(button(s.slot, "set-tries", String(n), { pin: pin.name, tries: n },
      { "data-pin": pin.name, "data-tries": n, title: `set tries ${n}`,
        "aria-label": `set ${pin.name} tries ${n}` }));
  }
  const value = el("input", { type: "password", autocomplete: "off", "data-pin": pin.name,
                              placeholder: "new value", "aria-label": `new ${pin.label}` });
  const reset = el("button", { "data-slot": s.slot, "data-action": "set-pin",
                               "data-pin": pin.name, title: pin.spec,
                               onclick: () => {
                                 control(s.slot, "set-pin", { pin: pin.name, value: value.value });
                                 value.value = "";
                               } }, "re-set");
  const last = pin.last;
  return el("tr", { "data-pin": pin.name },
    el("td", {}, el("b", {}, pin.name), el("br"), el("small", {}, pin.label)),
    el("td", { class: `tries ${pin.blocked ? "blocked" : ""}`, "data-tries": pin.tries },
       `${pin.tries} / ${pin.max}`, pin.blocked ? " blocked" : ""),
    el("td", { class: "last" }, last ? [
      el("span", { class: `cause ${last.cause === "ok" ? "ok" : ""} ` +
                          `${last.cause === "control" ? "control" : ""}` }, last.cause),
      " ", last.text, el("br"), el("small", {}, last.time.slice(11, 23))] : "–"),
    el("td", {}, el("small", {}, "set tries "), tries,
       button(s.slot, "block", "block", { pin: pin.name }, { "data-pin": pin.name }),
       el("br"), value, reset));
}

function slotCard(s) {
  if (!("present" in s)) return el("article", { class: "slot" }, el("h2", {}, s.reader), "…");
  const opts = state.options;
  const title = el("h2", {}, `slot ${s.slot}: ${s.reader}`,
    badge(s.inserted, "inserted", "removed"), badge(s.powered, "powered", "unpowered"),
    s.tear_pending ? el("span", { class: "badge warn" }, `tear next VERIFY ×${s.tear_pending}`)
      : null);
  const reader = el("div", { class: "controls" },
    button(s.slot, s.present ? "remove" : "insert", s.present ? "remove card" : "insert card"),
    button(s.slot, "power-cycle", "power-cycle"),
    s.card === "emulator" ? button(s.slot, "tear", "tear next VERIFY") : null,
    s.card === "emulator" ? button(s.slot, "new-card", "new card") : null);
  if (s.card !== "emulator") {
    return el("article", { class: "slot", "data-slot": s.slot }, title,
      el("div", { class: "facts" }, `${s.card} (no PINs)`), reader);
  }
  const profiles = el("label", {}, "profile ",
    el("select", { "data-slot": s.slot, "data-action": "profile",
                   onchange: (e) => control(s.slot, "profile", { profile: e.target.value }) },
      opts.profiles.map((p) => el("option", { value: p, selected: p === s.profile }, p))));
  const atr = el("label", {}, "ATR ",
    el("select", { "data-slot": s.slot, "data-action": "atr-form",
                   onchange: (e) => control(s.slot, "atr-form", { form: e.target.value }) },
      opts.atr_forms.map((f) => el("option", { value: f, selected: f === s.atr_form }, f))));
  const quirks = opts.quirks.map((q) => el("label", {},
    el("input", { type: "checkbox", "data-slot": s.slot, "data-quirk": q, checked: s.quirks[q],
                  onchange: (e) => control(s.slot, "quirk", { name: q, on: e.target.checked }) }),
    ` ${q}`));
  return el("article", { class: "slot", "data-slot": s.slot }, title,
    el("div", { class: "facts" },
       `profile ${s.profile} · ATR ${s.atr_form} · quirks: `,
       Object.entries(s.quirks).filter(([, on]) => on).map(([q]) => q).join(", ") || "none",
       ` · ${s.store}`),
    el("table", { class: "pins" },
       el("thead", {}, el("tr", {}, ["PIN", "tries", "last change", "controls"]
         .map((h) => el("th", {}, h)))),
       el("tbody", {}, s.pins.map((pin) => pinRow(s, pin)))),
    reader, el("div", { class: "controls" }, profiles, atr, quirks));
}

function renderSlots() {
  const box = document.getElementById("slots");
  // Keep a half-typed PIN value across a re-render.
  const typed = [...box.querySelectorAll("input[type=password]")]
    .map((i) => [i.closest("article")?.dataset.slot, i.dataset.pin, i.value]);
  box.replaceChildren(...state.slots.map(slotCard));
  for (const [slot, pin, value] of typed) {
    const input = box.querySelector(`article[data-slot="${slot}"] input[data-pin="${pin}"]`);
    if (input && value) input.value = value;
  }
  const downloads = document.getElementById("downloads");
  downloads.replaceChildren(...state.slots.map((s) =>
    el("a", { href: `/api/slots/${s.slot}/trace`, download: `panel-slot${s.slot}.jsonl` },
       `trace slot ${s.slot} `)));
}

function swClass(sw) {
  if (sw === "9000" || sw.startsWith("61")) return "sw-ok";
  return /^(63C|6983|6984|lost)/.test(sw) ? "sw-bad" : "";
}

function logRow(e) {
  const time = e.time.slice(11, 23);
  if (e.kind === "event") {
    return el("tr", { class: "event" }, el("td", {}, time), el("td", {}, e.slot),
              el("td", { colspan: 7 }, `card ${e.event}`));
  }
  if (e.kind === "control") {
    return el("tr", { class: "control" }, el("td", {}, time), el("td", {}, e.slot),
              el("td", {}, `control: ${e.action}`), el("td", {}), el("td", {}),
              el("td", {}, e.pin || ""), el("td", {}), el("td", {}), el("td", {}, e.text));
  }
  return el("tr", { class: "apdu", "data-sw": e.sw },
    el("td", {}, time), el("td", {}, e.slot),
    el("td", { class: "hex", title: e.hex }, e.name),
    el("td", {}, e.app || ""), el("td", {}, e.ef || ""), el("td", {}, e.pin || ""),
    el("td", { class: swClass(e.sw), title: e.sw_name }, e.sw),
    el("td", {}, e.latency_ms.toFixed(1)),
    el("td", {}, e.cause ? [el("span", { class: `cause ${e.cause === "ok" ? "ok" : ""}` },
                               e.cause), " ", e.text] : (e.sw_name || "")));
}

function renderLog() {
  const needle = state.filter.toLowerCase();
  const rows = [];
  for (const e of state.log) {
    if (needle && !JSON.stringify(e).toLowerCase().includes(needle)) continue;
    rows.push(logRow(e));
    if (rows.length >= 500) break;
  }
  document.querySelector("#log tbody").replaceChildren(...rows);
}

function onMessage(message) {
  if (message.type === "hello") {
    state.slots = message.slots;
    state.log = message.log;
    state.options = message.options;
    renderSlots();
    renderLog();
  } else if (message.type === "slot") {
    state.slots[message.status.slot] = message.status;
    renderSlots();
  } else if (message.type === "log") {
    state.log.unshift(message.entry);
    if (state.log.length > 4000) state.log.length = 4000;
    renderLog();
  }
}

function connect() {
  const events = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
  const status = document.getElementById("connection");
  events.onopen = () => { status.textContent = "live"; status.className = "badge on"; };
  events.onerror = () => { status.textContent = "reconnecting…"; status.className = "badge off"; };
  events.onmessage = (event) => onMessage(JSON.parse(event.data));
}

document.getElementById("filter").addEventListener("input", (e) => {
  state.filter = e.target.value;
  renderLog();
});
connect();
