// NGUI: a dashboard over the REST API (/api/v1). The token lives in this tab's sessionStorage.
"use strict";

const api = {
  token: () => sessionStorage.getItem("postern-token"),
  async call(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (api.token()) headers["Authorization"] = "Bearer " + api.token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await answer.text();
    const json = text ? JSON.parse(text) : {};
    if (!answer.ok) throw new Error(json.error || answer.statusText);
    return json;
  },
};

function show(loggedIn) {
  document.getElementById("ngui-login").classList.toggle("hidden", loggedIn);
  document.getElementById("ngui-dashboard").classList.toggle("hidden", !loggedIn);
  document.getElementById("ngui-logout").classList.toggle("hidden", !loggedIn);
}

function rows(table, pairs) {
  table.replaceChildren(...pairs.map(([name, value]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    const td = document.createElement("td");
    th.textContent = name;
    td.textContent = value;
    tr.append(th, td);
    return tr;
  }));
}

async function refresh() {
  try {
    const status = await api.call("GET", "/api/v1/status");
    document.getElementById("ngui-host").textContent = status.hostname;
    rows(document.getElementById("ngui-counters"), status.counters);
    const ssl = (await api.call("GET", "/api/v1/config/ssl")).settings;
    rows(document.getElementById("ngui-ssl"), [
      ["GUI HTTPS", ssl.gui_https.method],
      ["Inbound SMTP", ssl.inbound_smtp.method],
      ["Outbound SMTP", ssl.outbound_smtp.method],
      ["Other TLS client services", ssl.other_client.protocols.join("")],
    ]);
    document.getElementById("ngui-tls13").textContent = ssl.tls13_ciphers.join(", ");
    const report = await api.call("GET", "/api/v1/reports/tls");
    for (const way of ["inbound", "outbound"]) {
      const d = report[way];
      const pct = (n) => d.connections ? " (" + (100 * n / d.connections).toFixed(1) + "%)" : "";
      rows(document.getElementById("ngui-tls-" + way), [
        ["Connections", String(d.connections)],
        ...d.tls.map((s) => [s.protocol + " " + s.cipher, s.connections + pct(s.connections)]),
        ["TLS failed", d.failed + pct(d.failed)],
        ["No TLS", d.clear + pct(d.clear)],
      ]);
    }
    show(true);
  } catch (e) {
    sessionStorage.removeItem("postern-token");
    show(false);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("ngui-login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("ngui-login-error");
    error.textContent = "";
    try {
      const answer = await api.call("POST", "/api/v1/login", {
        username: document.getElementById("ngui-username").value,
        password: document.getElementById("ngui-password").value,
      });
      sessionStorage.setItem("postern-token", answer.token);
      await refresh();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  document.getElementById("ngui-logout").addEventListener("click", async () => {
    try { await api.call("POST", "/api/v1/logout"); } catch (e) { /* already gone */ }
    sessionStorage.removeItem("postern-token");
    show(false);
  });
  document.getElementById("ngui-tracking-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("ngui-tracking-error");
    error.textContent = "";
    const query = new URLSearchParams({
      sender: document.getElementById("ngui-tracking-sender").value,
      recipient: document.getElementById("ngui-tracking-recipient").value,
    });
    try {
      const found = await api.call("GET", "/api/v1/tracking?" + query);
      rows(document.getElementById("ngui-tracking-results"), found.messages.map((m) =>
        ["MID " + m.mid + " " + (m.started || ""), (m.sender || "") + " → " + m.recipients.join(", ") + " · " + m.state]));
    } catch (e) {
      error.textContent = e.message;
    }
  });
  if (api.token()) refresh(); else show(false);
});
