// Small progressive enhancements; every page works without JavaScript.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// StartingForm: show the "new assay" fields only when needed; upload with a progress bar.
(function () {
  const form = document.getElementById("start-form");
  if (!form) return;
  const assay = document.getElementById("assay_id");
  const fresh = document.getElementById("new-assay");
  const toggle = () => fresh.classList.toggle("d-none", assay.value !== "new");
  assay.addEventListener("change", toggle);
  toggle();
  form.addEventListener("submit", (event) => {
    if (!window.FormData || !window.XMLHttpRequest) return;
    event.preventDefault();
    const box = document.getElementById("upload-progress");
    const bar = box.querySelector(".progress-bar");
    const button = document.getElementById("start-submit");
    button.disabled = true;
    box.classList.remove("d-none");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", document.querySelector("meta[name=csrf-token]").content);
    // Success comes back as {"redirect": url}: following a redirect inside the XHR would use
    // up the page's success message before the browser shows the page.
    xhr.setRequestHeader("Accept", "application/json, text/html;q=0.9");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((100 * e.loaded) / e.total);
      bar.style.width = pct + "%";
      bar.textContent = pct < 100 ? pct + " %" : "Reading your documents…";
    });
    xhr.addEventListener("load", () => {
      const type = xhr.getResponseHeader("Content-Type") || "";
      if (xhr.status === 200 && type.startsWith("application/json")) {
        const target = new URL(JSON.parse(xhr.responseText).redirect, window.location.href);
        if (target.origin === window.location.origin) {
          window.location.assign(target.href);
          return;
        }
      }
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", () => {
      button.disabled = false;
      bar.classList.add("bg-danger");
      bar.textContent = "The upload failed. Please try again.";
    });
    // Fields first, files last: the server can then store each file while it arrives,
    // instead of after the whole form (the consent box comes after the file input on the page).
    const data = new FormData();
    const entries = Array.from(new FormData(form).entries());
    for (const [key, value] of entries) if (!(value instanceof File)) data.append(key, value);
    for (const [key, value] of entries) if (value instanceof File) data.append(key, value, value.name);
    xhr.send(data);
  });
})();

// Overview: follow running assays (one's own and those shared with one) without a reload.
(function () {
  const tables = Array.from(document.querySelectorAll("#assay-table, #shared-table"));
  if (!tables.length) return;
  const active = () => tables.some((t) => t.querySelector("[data-status=scheduled], [data-status=busy]"));
  const refresh = () => {
    fetch("/api/assays/status", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : []))
      .then((rows) => {
        for (const row of rows) {
          const tr = tables.map((t) => t.querySelector(`tr[data-assay-id="${row.id}"]`)).find((found) => found);
          if (!tr) continue;
          const badge = tr.querySelector(".badge");
          badge.className = "badge status-" + row.status;
          badge.dataset.status = row.status;
          badge.textContent = row.label;
          tr.querySelector(".progress-cell").textContent = `${row.accepted} / ${row.total}`;
          tr.querySelector(".drafted-cell").textContent = `${row.drafted}`;
          const alerts = tr.querySelector(".alerts-cell");
          alerts.textContent = row.alerts.join(" ");
        }
        if (active()) window.setTimeout(refresh, 2000);
      })
      .catch(() => window.setTimeout(refresh, 5000));
  };
  if (active()) window.setTimeout(refresh, 2000);
})();

// Answer page: a citation's passage and an answer's editor are loaded when opened (they are
// not part of the page, which stays light); without JavaScript, their links lead to them.
document.addEventListener("toggle", (event) => {
  const details = event.target;
  if (!details.open || !details.dataset || !details.dataset.load || details.dataset.loaded) return;
  details.dataset.loaded = "yes";
  fetch(details.dataset.load, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
    .then((html) => {
      const found = new DOMParser().parseFromString(html, "text/html").getElementById(details.id + "-body");
      const body = details.querySelector(".load-body");
      if (found && body) body.replaceWith(found);
    })
    .catch(() => { delete details.dataset.loaded; });
}, true);

// Answer page: a citation badge opens its evidence (the passage with the quote marked).
document.addEventListener("click", (event) => {
  const badge = event.target.closest && event.target.closest("a[data-evidence]");
  if (!badge) return;
  const details = document.getElementById(badge.dataset.evidence);
  if (!details) return;
  event.preventDefault();
  details.open = true;
  details.scrollIntoView({ block: "nearest" });
});

// Answer page: the filter switches without a reload (the links work without JavaScript).
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("#answer-filter a[data-show]");
  const sheet = document.getElementById("answer-sheet");
  if (!link || !sheet) return;
  event.preventDefault();
  sheet.classList.remove("show-all", "show-open", "show-not-found");
  sheet.classList.add("show-" + link.dataset.show);
  window.history.replaceState(null, "", "?show=" + link.dataset.show + window.location.hash);
});

// Answer page: "Mark all open for update" ticks "regenerate" on every answer not accepted.
(function () {
  const button = document.getElementById("mark-open");
  if (!button) return;
  button.classList.remove("d-none");
  button.addEventListener("click", () => {
    const open = document.querySelectorAll('.question[data-accepted="false"] input[name=question_ids]');
    open.forEach((box) => { box.checked = true; });
    button.textContent = `${open.length} marked for update — add documents below`;
  });
})();

// Answer editor: Ctrl+Enter (⌘+Enter) saves, from the keyboard without reaching for the button.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  const area = event.target.closest && event.target.closest("form.answer-form textarea");
  if (!area) return;
  event.preventDefault();
  area.form.requestSubmit();
});

// Admin tables: copy a whole SHA-256 (the table shows its first digits).
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "copied";
    window.setTimeout(() => { button.textContent = label; }, 1500);
  });
});
