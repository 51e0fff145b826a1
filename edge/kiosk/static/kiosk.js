// The register's touchscreen. The page is a pure function of the state document the server
// pushes over /ws (and returns from every command); the only state kept here is what the
// cashier is typing, which line is selected, and which dialog is open.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

let doc = JSON.parse($("#initial").textContent);
let seenAlert = doc.register?.alert?.id ?? 0;
const typed = { main: "", pin: "", modal: "", code: "" };
let selectedLine = null;
let pinEmployee = null;
let quickTab = null;  // the quick-key category shown (its name)
let socket = null;
window.__scanTimes = [];  // browser round trips of wedge scans, read by the benchmark
let pendingScan = null;

// -- amounts: typed as decimal text, sent as integer minor units (never through a float) --------
function toMinor(text, exponent = 2) {
  const t = String(text).trim();
  if (!/^\d*(\.\d*)?$/.test(t) || t === "" || t === ".") return null;
  const [whole, frac = ""] = t.split(".");
  if (frac.length > exponent) return null;
  return parseInt((whole || "0") + frac.padEnd(exponent, "0"), 10);
}

// -- talking to the register ---------------------------------------------------------------------
// The register's commands reach it in the order the cashier tapped them: each waits for the one
// before (a cash-out then an X report sent at once could arrive the other way round, on two of
// the browser's connections, and the X report miss the cash-out). Reads that wait on the cloud
// (a customer search, a receipt lookup) go at once and hold up nothing.
let commands = Promise.resolve();
const isRead = (path) => /^(customer\/search|returns\/lookup)$/.test(path);
function post(path, body = {}) {
  if (isRead(path)) return send(path, body);
  const turn = commands.then(() => send(path, body));
  commands = turn.catch(() => null);
  return turn;
}
async function send(path, body) {
  const reg = doc.register;
  if (reg && !("cart_id" in body) && needsCart(path)) body.cart_id = reg.cart.id;
  let res;
  try {
    res = await fetch("/api/" + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch (err) {
    showAlert({ id: -1, code: "network", message: "The register service does not answer. Wait a moment and try again." });
    return null;
  }
  const answer = await res.json().catch(() => ({}));
  if (answer.state) apply(answer.state);
  if (res.status === 409 && answer.error?.code === "approval_required") {
    openApproval(answer.error.message, (manager) => post(path, { ...body, manager }));
  }
  return answer;
}
const needsCart = (path) => !/^(signin|lock|unlock|shift|returns|enrolment)/.test(path);

function connect() {
  socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  socket.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "state") apply(msg.state);
    if (msg.type === "scanned" && msg.why) showAlert({ id: -1, code: "busy", message: msg.why });
  };
  socket.onclose = () => setTimeout(connect, 500);
}

function sendScan(code) {
  if (!code) return;
  const reg = doc.register;
  pendingScan = { t0: performance.now(), count: reg ? reg.cart.lines.length : 0 };
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "scan", code, cart_id: reg?.cart.id }));
  } else {
    post("scan", { code });
  }
}

// -- rendering -----------------------------------------------------------------------------------
function apply(state) {
  doc = state;
  render();
  if (pendingScan && doc.register && doc.register.cart.lines.length > pendingScan.count) {
    window.__scanTimes.push(performance.now() - pendingScan.t0);
    pendingScan = null;
  }
}

function screenName() {
  const reg = doc.register;
  if (doc.waiting_for_config) return "config";
  if (!doc.enrolled || !reg) return "enrol";
  if (!reg.cashier) return "signin";
  if (reg.receipt && reg.cart.count === 0 && !reg.payment) return "receipt";
  if (!reg.shift) return "shift";
  if (reg.payment) return "pay";
  return "sale";
}

function render() {
  const name = screenName();
  for (const s of $$(".screen")) s.hidden = s.id !== "scr-" + name;
  renderBar();
  const reg = doc.register;
  if (!reg) { closeModal(); renderEnrol(doc.first_boot); renderEntries(); return; }
  if (name === "signin") renderSignin(reg);
  if (name === "sale") renderSale(reg);
  if (name === "pay") renderPay(reg);
  if (name === "receipt") renderReceipt(reg);
  $("#busy").hidden = !reg.busy;
  $("#busy").textContent = reg.busy ? "Wait: " + reg.busy + " …" : "";
  const alert = reg.alert;
  if (!alert && $("#alert").dataset.source === "server") $("#alert").hidden = true;
  if (alert && alert.id > seenAlert) {
    seenAlert = alert.id;
    if (alert.code === "unknown_item") openUnknownItem(alert);
    showAlert(alert);
  }
  renderEntries();
}

function renderBar() {
  const reg = doc.register;
  $("#store").textContent = reg ? `${reg.store} · ${reg.register_name}` : "storefleet";
  $("#cashier").textContent = reg?.cashier ? reg.cashier.name : "";
  $("#lock").hidden = !reg?.cashier;
  const online = doc.link.online;
  const badge = $("#link-badge");
  badge.textContent = online === null ? "Local only" : online ? "Online" : "Offline";
  badge.className = "badge " + (online === false ? "bad" : online ? "good" : "");
  badge.dataset.online = String(online);
  const backlog = $("#backlog");
  backlog.dataset.backlog = String(doc.link.backlog);
  backlog.textContent = `Not yet sent: ${doc.link.backlog}`;
  backlog.className = "badge " + (doc.link.backlog > 0 ? "warn" : "");
  const printer = $("#printer-badge");
  printer.hidden = !doc.printer;
  printer.textContent = doc.printer ? "Printer: " + doc.printer : "";
}

// -- first boot: the enrolment desk's progress, refusal and outcome ------------------------------
const STEPS = ["pinning", "requesting"];
function renderEnrol(fb) {
  const steps = $("#enrol-steps");
  $("#enrol-type").hidden = !fb || !fb.codes;
  if (!fb) { steps.hidden = true; $("#enrol-refusal").hidden = true; return; }
  steps.dataset.phase = fb.phase;
  steps.hidden = !(STEPS.includes(fb.phase) || fb.failed_step || fb.phase === "enrolled");
  for (const li of $$("li", steps)) {
    const step = li.dataset.step;
    const done = fb.steps_done.includes(step) || (step === "enrolled" && fb.phase === "enrolled");
    li.className = done ? "done" : step === fb.phase ? "active" : step === fb.failed_step ? "failed" : "";
  }
  $('#enrol-steps [data-step="enrolled"]').textContent = fb.enrolled ? enrolledAs(fb.enrolled) : "Enrolled";
  const refusal = fb.phase === "refused" ? fb.refusal : null;
  $("#enrol-refusal").hidden = !refusal;
  $("#enrol-refusal").dataset.reason = refusal ? refusal.reason : "";
  $("#enrol-refusal-text").textContent = refusal ? refusal.message : "";
  $("#enrol-refusal-advice").textContent = refusal ? refusal.advice : "";
}
const enrolledAs = (e) => `Enrolled as ${e.device_id} for ${e.store}` + (e.register_name ? ` (${e.register_name})` : "");
const formatCode = (t) => t.replace(/(.{4})(?=.)/g, "$1-");

function sendEnrolScan(text) {
  if (!text) return;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "scan", code: text }));
  else enrolPost("enrolment/scan", { text });
}
async function enrolPost(path, body) {
  const answer = await post(path, body);
  if (answer && answer.error) showAlert({ id: -1, code: answer.error.code, message: answer.error.message });
}

function renderSignin(reg) {
  const note = doc.first_boot?.enrolled;
  $("#enrolled-note").hidden = !note;
  $("#enrolled-note").textContent = note ? "✓ " + enrolledAs(note) + ". Sign in to start selling." : "";
  $("#staff").innerHTML = reg.employees.map((e) =>
    `<button class="tile${pinEmployee === e.id ? " chosen" : ""}" data-employee="${esc(e.id)}" data-testid="employee-${esc(e.id)}">${esc(e.name)}<small>${esc(e.role)}</small></button>`).join("");
  $("#pin-panel").hidden = !pinEmployee;
  const who = reg.employees.find((e) => e.id === pinEmployee);
  $("#pin-who").textContent = who ? `PIN for ${who.name}` : "";
}

function renderSale(reg) {
  const lines = reg.cart.lines;
  if (selectedLine !== null && !lines.some((l) => l.line_id === selectedLine && !l.voided)) selectedLine = null;
  $("#lines").innerHTML = lines.map((l) => `
    <li class="line${l.voided ? " voided" : ""}${l.line_id === selectedLine ? " selected" : ""}" data-line="${l.line_id}" data-testid="line">
      <span class="name">${esc(l.name)}${l.overridden ? ' <em class="tag">price</em>' : ""}</span>
      <span class="qty">${esc(l.quantity)}${l.weighed ? " kg" : ""} × ${esc(l.unit_price.text)}</span>
      <span class="amount">${l.voided ? "void" : esc(l.total.text)}</span>
      ${l.discount && l.discount.minor ? `<span class="disc">−${esc(l.discount.text)}</span>` : ""}
    </li>`).join("") || `<li class="empty">Scan an item, type a code or search.</li>`;
  const last = $("#lines .line:last-child");
  if (last && !selectedLine) last.scrollIntoView({ block: "nearest" });
  $("#count").textContent = `${reg.cart.count} item${reg.cart.count === 1 ? "" : "s"}`;
  $("#discount-total").textContent = reg.cart.discount.minor ? `Discounts −${reg.cart.discount.text}` : "";
  $("#total").textContent = `${reg.currency} ${reg.cart.total.text}`;
  $("#parked-count").textContent = reg.parked.length ? `(${reg.parked.length})` : "";
  renderCustomer($("#customer"), reg.customer);
  renderQuick(reg.quick_keys || []);
}

// -- the attached customer (a scanned loyalty card): pseudonymous id, tier, balance --------------
function renderCustomer(el, c) {
  el.hidden = !c;
  if (!c) return;
  el.innerHTML = `<b data-testid="customer-id">${esc(c.id)}</b> <span data-testid="customer-tier">${esc(c.tier)}</span>
    <span data-testid="customer-points">${c.points} points</span>
    ${c.store_credit.minor ? `<span data-testid="customer-credit">credit ${esc(c.store_credit.text)}</span>` : ""}
    ${c.offline ? `<em data-testid="customer-offline">offline: up to ${c.redeemable_points} points</em>` : ""}`;
}

// -- quick keys: categories as tabs, coloured keys; a tap adds one of the item -------------------
function inkOn(hex) {  // black or white text, whichever reads better on the key's colour
  const n = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111827" : "#ffffff";
}
function renderQuick(tabs) {
  $("#quick").hidden = tabs.length === 0;
  if (!tabs.length) return;
  if (!tabs.some((t) => t.name === quickTab)) quickTab = tabs[0].name;
  $("#quick-tabs").innerHTML = tabs.map((t) =>
    `<button role="tab" class="${t.name === quickTab ? "chosen" : ""}" style="border-bottom-color:${t.name === quickTab ? esc(t.colour) : "transparent"}" data-act="quick-tab" data-tab="${esc(t.name)}" data-testid="quick-tab-${esc(t.name)}" aria-selected="${t.name === quickTab}">${esc(t.name)}</button>`).join("");
  const tab = tabs.find((t) => t.name === quickTab);
  $("#quick-grid").innerHTML = tab.keys.map((k) =>
    `<button class="quick-key" style="background:${esc(k.colour)};color:${inkOn(k.colour)}" data-act="quick-key" data-item="${esc(k.item_id ?? "")}" data-testid="quick-key-${esc(k.sku)}"${k.item_id ? "" : ' disabled title="Not in the catalog"'}>${esc(k.label)}<small>${k.price ? esc(k.price.text) : "not in catalog"}</small></button>`).join("");
}

function renderPay(reg) {
  const p = reg.payment;
  $("#pay-due").textContent = `${reg.currency} ${p.due.text}`;
  $("#pay-paid").textContent = p.paid.text;
  $("#pay-remaining").textContent = p.remaining.text;
  $("#pay-cash-due").textContent = p.cash_due.text;
  const label = { card: "Card ****", cash: "Cash", loyalty_points: "Points", store_credit: "Store credit" };
  $("#tenders").innerHTML = p.tenders.map((t) =>
    `<li data-testid="tender-${esc(t.kind)}">${esc(label[t.kind] || t.kind)}${t.kind === "card" ? esc(t.last4) : ""} <b>${esc(t.amount.text)}</b></li>`).join("");
  const c = reg.customer;
  $('[data-act="points"]').hidden = !c || c.redeemable_points <= 0;
  $('[data-act="credit"]').hidden = !c || c.redeemable_credit.minor <= 0;
  renderCustomer($("#pay-customer"), c);
}

function renderReceipt(reg) {
  const r = reg.receipt;
  $("#receipt-text").textContent = r.text;
  $("#change").textContent = r.kind === "sale" ? (r.change.minor ? `Change ${reg.currency} ${r.change.text}` : "No change") : "";
  $("#receipt-hint").textContent = r.kind === "sale" ? "Scan the next item to start a new sale." : "";
}

function renderEntries() {
  for (const el of $$("[data-show]")) el.textContent = (el.dataset.show === "code" ? formatCode(typed.code) : typed[el.dataset.show]) || "\u00a0";
  $("#pin-dots").textContent = "●".repeat(typed.pin.length) || "\u00a0";
  for (const el of $$("[data-show-modal]")) el.textContent = typed.modal || "\u00a0";
}

function showAlert(alert) {
  $("#alert").dataset.source = alert.id > 0 ? "server" : "screen";
  $("#alert-text").textContent = alert.message;
  $("#alert").dataset.code = alert.code;
  $("#alert").hidden = false;
}

// -- keypads -------------------------------------------------------------------------------------
const PAD = ["7", "8", "9", "⌫", "4", "5", "6", "C", "1", "2", "3", ".", "0", "00"];
// the typed enrolment code's alphabet (Crockford base32: no I, L, O, U to mistake)
const CODE_PAD = [..."0123456789ABCDEFGHJKMNPQRSTVWXYZ", "⌫", "clear"];  // "C" is a letter here
function buildPad(el) {
  const keys = el.dataset.pad === "pin" ? ["1", "2", "3", "4", "5", "6", "7", "8", "9", "C", "0", "⌫"] : el.dataset.pad === "code" ? CODE_PAD : PAD;
  el.innerHTML = keys.map((k) => `<button class="key" data-key="${k}">${k === "clear" ? "Clear" : k}</button>`).join("") +
    (el.dataset.enter ? `<button class="key enter" data-key="enter" data-testid="pad-enter-${el.dataset.pad}">${el.dataset.pad === "pin" ? "OK" : "Enter"}</button>` : "");
}
function press(buffer, key) {
  if (key === "⌫") typed[buffer] = typed[buffer].slice(0, -1);
  else if (key === "clear" || (key === "C" && buffer !== "code")) typed[buffer] = "";
  else if (typed[buffer].length < 24) typed[buffer] += key;
  renderEntries();
}
function take(buffer) { const v = typed[buffer]; typed[buffer] = ""; renderEntries(); return v; }

// -- actions -------------------------------------------------------------------------------------
function targetLine() {
  if (selectedLine !== null) return selectedLine;
  const open = doc.register.cart.lines.filter((l) => !l.voided);
  return open.length ? open[open.length - 1].line_id : null;
}

const actions = {
  "open-shift": () => { const m = toMinor(take("main")); if (m === null) return showAlert({ message: "Type the float first.", code: "bad_input" }); post("shift/open", { amount_minor: m }); },
  code: () => sendScan(take("main")),
  qty: () => { const l = targetLine(); if (l === null) return; post(`lines/${l}/quantity`, { quantity: take("main") || "0" }); },
  price: () => { const l = targetLine(); const m = toMinor(take("main")); if (l === null || m === null) return showAlert({ message: "Type the new price, then press Price.", code: "bad_input" }); post(`lines/${l}/price`, { price_minor: m }); },
  discount: () => { const l = targetLine(); const p = take("main"); if (l === null || !p) return showAlert({ message: "Type the percent, then press Disc %.", code: "bad_input" }); post("discount", { line_id: l, percent: p }); },
  "void-line": () => { const l = targetLine(); if (l !== null) post(`lines/${l}/void`); },
  search: () => openSearch("Find an item"),
  customer: () => openCustomer(),
  park: () => post("park"),
  parked: () => openParked(),
  menu: () => openMenu(),
  pay: () => post("pay/start"),
  cash: () => { const m = toMinor(take("main")); post("pay/cash", { received_minor: m === null ? doc.register.payment.cash_due.minor : m }); },
  "cash-exact": () => post("pay/cash", { received_minor: doc.register.payment.cash_due.minor }),
  "cash-note": (btn) => post("pay/cash", { received_minor: parseInt(btn.dataset.note, 10) }),
  card: () => { const m = toMinor(take("main")); post("pay/card", m === null ? {} : { amount_minor: m }); },
  "pay-back": () => post("pay/cancel"),
  points: () => { const t = take("main"); post("pay/points", t ? { points: parseInt(t, 10) } : {}); },
  credit: () => { const m = toMinor(take("main")); post("pay/credit", m === null ? {} : { amount_minor: m }); },
  "new-sale": () => post("sale/new"),
  "quick-tab": (btn) => { quickTab = btn.dataset.tab; render(); },
  "quick-key": (btn) => { if (btn.dataset.item) post("items", { item_id: btn.dataset.item, quantity: "1" }); },
  "enrol-type": () => { $("#enrol-code").hidden = !$("#enrol-code").hidden; },
  "enrol-code": () => { const code = take("code"); if (code) enrolPost("enrolment/code", { code }); },
};

document.addEventListener("click", (ev) => {
  const btn = ev.target.closest("button");
  if (!btn || btn.disabled) return;
  if (btn.dataset.key) {
    const pad = btn.closest("[data-pad]");
    const buffer = pad.dataset.pad;
    if (btn.dataset.key === "enter") return enter(pad.dataset.enter);
    return press(buffer, btn.dataset.key);
  }
  if (btn.dataset.employee) { pinEmployee = btn.dataset.employee; typed.pin = ""; $("#pin-error").textContent = ""; $("#unlock").hidden = true; return render(); }
  if (btn.dataset.act && actions[btn.dataset.act]) return actions[btn.dataset.act](btn);
  if (btn.id === "alert-close") { $("#alert").hidden = true; return; }
  if (btn.id === "lock") return post("lock");
  if (btn.id === "unlock") return openApproval("Manager: unlock " + pinEmployee, (manager) => post("unlock", { employee_id: pinEmployee, manager }));
});
$("#lines").addEventListener("click", (ev) => {
  const li = ev.target.closest("[data-line]");
  if (!li) return;
  const id = parseInt(li.dataset.line, 10);
  selectedLine = selectedLine === id ? null : id;
  render();
});

function enter(what) {
  if (what === "signin") return signIn();
  if (actions[what]) return actions[what]();
  if (modalEnter) return modalEnter();
}

async function signIn() {
  const pin = take("pin");
  const answer = await post("signin", { employee_id: pinEmployee, pin });
  if (answer && answer.error) {
    $("#pin-error").textContent = answer.error.message;
    $("#unlock").hidden = answer.error.code !== "locked_out";
    $("#alert").hidden = true;
  } else if (answer) {
    pinEmployee = null;
  }
}

// keyboard wedge: a scanner types digits and Enter into the page; typed text fields keep theirs.
// On the sale screen it may type letters too (a loyalty card's QR): they go to the scan as typed.
// Through a full-width IME or a Persian/Arabic layout the same number-row keys type other digits;
// they mean 0-9 (the register reads them the same way), anything else is not a digit.
const WEDGE_ZEROS = [0x30, 0xFF10, 0x0660, 0x06F0];
function wedgeDigit(key) {
  if (key.length !== 1) return null;
  const point = key.codePointAt(0);
  for (const zero of WEDGE_ZEROS) if (point >= zero && point <= zero + 9) return String(point - zero);
  return null;
}
let wedge = "";
document.addEventListener("keydown", (ev) => {
  if (ev.target.matches && ev.target.matches("input, textarea")) return;
  const name = screenName();
  if (name === "enrol") {  // the enrolment QR is a URI: take every printable character
    if (ev.key.length === 1) { wedge += ev.key; ev.preventDefault(); }
    else if (ev.key === "Enter") { ev.preventDefault(); const text = wedge; wedge = ""; sendEnrolScan(text); }
    return;
  }
  const buffer = name === "signin" ? "pin" : !$("#modal-back").hidden ? "modal" : null;
  const digit = wedgeDigit(ev.key);
  if (digit !== null) {
    if (buffer) press(buffer, digit); else wedge += digit;
    ev.preventDefault();
  } else if (ev.key.length === 1 && buffer === null && (name === "sale" || name === "receipt")) {
    wedge += ev.key;  // letters too: a loyalty card's QR is SFC1:<customer id> (issue 14)
    ev.preventDefault();
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    if (buffer === "pin") return signIn();
    if (buffer === "modal") return modalEnter && modalEnter();
    const code = wedge; wedge = "";
    if (name === "sale" || name === "receipt") sendScan(code);
  } else if (ev.key === "Escape") {
    wedge = ""; closeModal();
  }
});

// -- dialogs -------------------------------------------------------------------------------------
let modalEnter = null;
function openModal(html, onEnter = null) {
  typed.modal = "";
  $("#modal").innerHTML = html;
  $("#modal-back").hidden = false;
  modalEnter = onEnter;
  for (const pad of $$("[data-pad]", $("#modal"))) buildPad(pad);
  renderEntries();
}
function closeModal() { $("#modal-back").hidden = true; $("#modal").innerHTML = ""; modalEnter = null; typed.modal = ""; }
$("#modal").addEventListener("click", (ev) => {
  const btn = ev.target.closest("button");
  if (btn && btn.dataset.close !== undefined) closeModal();
});

function openApproval(message, retry) {
  const managers = doc.register.employees.filter((e) => e.role === "manager");
  let chosen = managers.length === 1 ? managers[0].id : null;
  openModal(`
    <h2>Manager approval</h2><p>${esc(message)}</p>
    <div class="tiles">${managers.map((m) => `<button class="tile${m.id === chosen ? " chosen" : ""}" data-manager="${esc(m.id)}">${esc(m.name)}</button>`).join("")}</div>
    <div class="entry pin" data-show-modal data-testid="approval-pin"></div>
    <div class="pad" data-pad="modal" data-enter="modal"></div>
    <div class="row"><button class="secondary" data-close>Cancel</button></div>`, async () => {
    const pin = take("modal");
    if (!chosen) return;
    closeModal();
    await retry({ employee_id: chosen, pin });
  });
  for (const b of $$("[data-manager]", $("#modal"))) b.addEventListener("click", () => { chosen = b.dataset.manager; $$("[data-manager]", $("#modal")).forEach((x) => x.classList.toggle("chosen", x === b)); });
  $("#modal").dataset.kind = "approval";
}

function openSearch(title, code = null) {
  openModal(`
    <h2>${esc(title)}</h2>
    ${code ? `<p class="error">Nothing in the catalog for <b>${esc(code)}</b>. Find the item by name, or scan again.</p>` : ""}
    <input id="search-box" class="search" placeholder="Name or PLU" autocomplete="off" data-testid="search-box">
    <div id="search-hits" class="tiles hits" data-testid="search-hits"></div>
    <div class="row"><button class="secondary" data-close data-testid="search-cancel">Cancel</button></div>`);
  $("#modal").dataset.kind = code ? "unknown-item" : "search";
  const box = $("#search-box");
  box.addEventListener("input", async () => {
    const q = box.value.trim();
    if (!q) { $("#search-hits").innerHTML = ""; return; }
    const res = await fetch("/api/search?q=" + encodeURIComponent(q));
    const hits = await res.json();
    $("#search-hits").innerHTML = hits.map((h) => `<button class="tile" data-item="${esc(h.id)}">${esc(h.name)}<small>${esc(h.price.text)}${h.weighed ? "/kg" : ""}</small></button>`).join("") || "<p>No match.</p>";
  });
  $("#search-hits").addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-item]");
    if (!b) return;
    closeModal();
    post("items", { item_id: b.dataset.item, quantity: "1" });
  });
  box.focus();
}
function openUnknownItem(alert) { openSearch("Unknown item", alert.detail || ""); }

// -- the customer: found by name, phone or e-mail in the cloud (online only), or by their card ----
// The register holds no names: the cloud answers pseudonymous ids with masked names, and the
// cashier taps one to attach it. A card scanned while the dialog is open attaches as on the sale.
const LETTER_ROWS = ["1234567890", "qwertyuiop", "asdfghjkl@", "zxcvbnm.-+"];  // names, phones, e-mails
let customerAsk = 0;  // the newest search sent; an older answer that arrives late is dropped
let customerTimer = null;
function openCustomer() {
  openModal(`<h2>Customer</h2>
    <div id="customer-now" class="customer" data-testid="customer-now" hidden></div>
    <p>Scan the customer's card, or find them by name, phone or e-mail (needs the network).</p>
    <div class="find">
      <input id="customer-box" class="search" type="search" inputmode="search" enterkeyhint="search" maxlength="200"
        placeholder="Name, phone or e-mail" autocomplete="off" autocapitalize="off" spellcheck="false" data-testid="customer-box">
      <button class="primary" data-find data-testid="customer-find">Search</button>
    </div>
    <div id="customer-error" class="error" role="status" data-testid="customer-error"></div>
    <div id="customer-hits" class="tiles hits" data-testid="customer-hits"></div>
    <div class="letters" data-testid="customer-keys">${LETTER_ROWS.map((row) => `<div>${[...row].map((k) =>
      `<button class="key" data-type="${esc(k)}" data-testid="type-${esc(k)}">${esc(k)}</button>`).join("")}</div>`).join("")}
      <div><button class="key space" data-type=" " data-testid="type-space">space</button><button class="key" data-type="⌫" data-testid="type-back">⌫</button><button class="key" data-type="clear">Clear</button></div>
    </div>
    <div class="row">
      <button class="secondary" data-detach data-testid="customer-detach" hidden>Remove customer</button>
      <button class="secondary" data-close data-testid="customer-close">Close</button>
    </div>`);
  $("#modal").dataset.kind = "customer";
  const box = $("#customer-box");
  const now = doc.register.customer;
  $("#customer-now").hidden = !now;
  $("[data-detach]", $("#modal")).hidden = !now;
  if (now) $("#customer-now").innerHTML = `On this sale: <b>${esc(now.id)}</b> ${esc(now.tier)}, ${now.points} points`;
  const find = () => {
    clearTimeout(customerTimer);
    if (!box.isConnected) return;  // the dialog closed while the typing paused
    const q = box.value.trim();
    if (/^SFC1:/i.test(q)) { closeModal(); return sendScan(q); }  // the scanner typed a card into the field
    if (q) findCustomers(q);
  };
  box.addEventListener("input", () => {
    clearTimeout(customerTimer);
    if (!box.value.trim()) { customerAsk++; $("#customer-hits").innerHTML = ""; $("#customer-error").textContent = ""; return; }
    customerTimer = setTimeout(find, 400);  // ask when the typing pauses, not at every key
  });
  box.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); find(); } });
  // the on-screen keys type into the field without taking the focus from it, so a physical
  // keyboard (or the scanner) can go on typing there
  const letters = $(".letters", $("#modal"));
  letters.addEventListener("pointerdown", (ev) => { if (ev.target.closest("[data-type]")) ev.preventDefault(); });
  letters.addEventListener("click", (ev) => {
    const k = ev.target.closest("[data-type]")?.dataset.type;
    if (k === undefined) return;
    box.value = k === "⌫" ? box.value.slice(0, -1) : k === "clear" ? "" : (box.value + k).slice(0, 200);
    box.dispatchEvent(new Event("input"));
    box.focus();
  });
  $("[data-find]", $("#modal")).addEventListener("click", find);
  // the dialog closes on the tap, not on the answer: the next scan must reach the sale, and a
  // refusal shows as the register's alert like any other command's
  $("[data-detach]", $("#modal")).addEventListener("click", () => { closeModal(); post("customer/detach"); });
  $("#customer-hits").addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-customer]");
    if (!b) return;
    closeModal();
    post("customer/attach", { customer_id: b.dataset.customer });
  });
  box.focus();
}

async function findCustomers(q) {
  const ask = ++customerAsk;
  const hits = $("#customer-hits");
  hits.setAttribute("aria-busy", "true");
  const answer = await post("customer/search", { q });
  if (ask !== customerAsk || !hits.isConnected) return;  // a newer search, or the dialog closed
  hits.removeAttribute("aria-busy");
  if (!answer) return;
  if (answer.error) { hits.innerHTML = ""; return customerRefused(answer.error); }
  $("#customer-error").textContent = "";
  $("#customer-error").dataset.code = "";
  hits.innerHTML = answer.customers.map((c) =>
    `<button class="tile" data-customer="${esc(c.id)}" data-testid="customer-hit">${esc(c.name)}<small>${esc(c.id)}</small></button>`).join("") ||
    `<p data-testid="customer-none">No customer found. Check the spelling, or scan their card.</p>`;
}

function customerRefused(error) {
  $("#customer-error").textContent = error.message;
  $("#customer-error").dataset.code = error.code;
  $("#alert").hidden = true;  // the dialog says it where the cashier is looking
}

function openParked() {
  const parked = doc.register.parked;
  openModal(`<h2>Parked sales</h2>
    <div class="tiles">${parked.map((p) => `<button class="tile" data-parked="${esc(p.id)}">${esc(p.label)}<small>${esc(p.at)}</small></button>`).join("") || "<p>No parked sales.</p>"}</div>
    <div class="row"><button class="secondary" data-close>Close</button></div>`);
  for (const b of $$("[data-parked]", $("#modal"))) b.addEventListener("click", () => { closeModal(); post("resume", { parked_id: b.dataset.parked }); });
}

function openMenu() {
  openModal(`<h2>Menu</h2>
    <div class="tiles menu">
      <button class="tile" data-menu="return" data-testid="menu-return">Return</button>
      <button class="tile" data-menu="cash-in" data-testid="menu-cash-in">Cash in</button>
      <button class="tile" data-menu="cash-out" data-testid="menu-cash-out">Cash out</button>
      <button class="tile" data-menu="x" data-testid="menu-x">X report</button>
      <button class="tile" data-menu="close" data-testid="menu-close">Close shift</button>
      <button class="tile" data-menu="basket" data-testid="menu-basket">Basket discount</button>
      <button class="tile" data-menu="void-sale" data-testid="menu-void-sale">Void sale</button>
    </div>
    <div class="row"><button class="secondary" data-close>Close</button></div>`);
  $("#modal").dataset.kind = "menu";
  const menu = {
    return: openReturn,
    "cash-in": () => openAmount("Cash into the drawer", "Put in", (m) => post("shift/cash", { direction: "in", amount_minor: m, reason: "change delivery" })),
    "cash-out": () => openAmount("Cash out of the drawer", "Take out", (m) => post("shift/cash", { direction: "out", amount_minor: m, reason: "to the safe" })),
    x: () => { closeModal(); post("shift/x"); },
    close: () => openAmount("Close the shift: count the drawer", "Close shift", (m) => post("shift/close", { amount_minor: m })),
    basket: () => openAmount("Basket discount in %", "Apply", (_m, text) => post("discount", { line_id: null, percent: text }), true),
    "void-sale": () => { closeModal(); post("sale/void"); },
  };
  for (const b of $$("[data-menu]", $("#modal"))) b.addEventListener("click", () => menu[b.dataset.menu]());
}

function openAmount(title, verb, done, raw = false) {
  const go = () => {
    const text = take("modal");
    const m = toMinor(text);
    if (m === null && !raw) return;
    closeModal();
    done(m, text);
  };
  openModal(`<h2>${esc(title)}</h2>
    <div class="entry" data-show-modal data-testid="modal-entry"></div>
    <div class="pad" data-pad="modal"></div>
    <div class="row"><button class="secondary" data-close>Cancel</button><button class="primary" data-go data-testid="modal-go">${esc(verb)}</button></div>`, go);
  $("[data-go]", $("#modal")).addEventListener("click", go);
}

function openReturn() {
  openModal(`<h2>Return against a receipt</h2>
    <p>Type or scan the receipt number.</p>
    <div class="entry" data-show-modal data-testid="return-receipt"></div>
    <div class="pad" data-pad="modal" data-enter="modal"></div>
    <div id="return-error" class="error" data-testid="return-error"></div>
    <div class="row"><button class="secondary" data-close>Cancel</button></div>`, lookup);
  $("#modal").dataset.kind = "return";
  async function lookup() {
    const receipt = take("modal");
    const answer = await post("returns/lookup", { receipt });
    if (!answer || answer.error) { $("#return-error").textContent = answer ? answer.error.message : ""; $("#alert").hidden = true; return; }
    chooseLines(answer.sale);
  }
}

function chooseLines(sale) {
  const wanted = {};
  openModal(`<h2>Return from receipt ${esc(sale.receipt_id)}</h2>
    <ul class="return-lines">${sale.lines.map((l) => `
      <li data-testid="return-line"><span class="name">${esc(l.name)}</span><span class="left">${esc(l.left)} of ${esc(l.sold)} left</span>
        <button class="key" data-minus="${l.line_id}">−</button><b data-qty="${l.line_id}">0</b><button class="key" data-plus="${l.line_id}" data-left="${esc(l.left)}" data-testid="return-plus">+</button></li>`).join("")}</ul>
    <div id="return-error" class="error" data-testid="return-error"></div>
    <div class="row"><button class="secondary" data-close>Cancel</button><button class="primary" data-refund data-testid="refund">Refund</button></div>`);
  $("#modal").dataset.kind = "return-lines";
  const show = (id) => { $(`[data-qty="${id}"]`).textContent = String(wanted[id] || 0); };
  for (const b of $$("[data-plus]")) b.addEventListener("click", () => { const id = b.dataset.plus; wanted[id] = (wanted[id] || 0) + 1; show(id); });
  for (const b of $$("[data-minus]")) b.addEventListener("click", () => { const id = b.dataset.minus; wanted[id] = Math.max(0, (wanted[id] || 0) - 1); show(id); });
  $("[data-refund]").addEventListener("click", async () => {
    const quantities = Object.fromEntries(Object.entries(wanted).filter(([, q]) => q > 0).map(([k, q]) => [k, String(q)]));
    const answer = await post("returns", { receipt: String(sale.receipt_no), quantities });
    if (answer && answer.error) { $("#return-error").textContent = answer.error.message; $("#alert").hidden = true; return; }
    closeModal();
  });
}

for (const pad of $$("[data-pad]")) buildPad(pad);
render();
connect();
