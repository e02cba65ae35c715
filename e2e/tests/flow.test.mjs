// End-to-end: the real server (embedded default: SQLite + local objects + offline LLM) in a
// temp directory, driven through Debian's headless Chromium. Screenshots go to
// ../test-output/. Needs TOXTEMP_BIN (default ../target/debug/toxtemp) and /usr/bin/chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const bin = process.env.TOXTEMP_BIN ?? path.join(root, "target/debug/toxtemp");
const shots = path.join(root, "test-output");
const fixtures = path.join(here, "../fixtures");
const USER = { email: "tox@example.org", password: "user password 1" };
const STAFF = { email: "admin@example.org", password: "admin password 1" };

let server, base, browser, work, fakeLlm, serverEnv;
let serverLog = "";

// An OpenAI-compatible stand-in that answers slowly enough for the overview to be seen
// following a running assay. It cites the first passage it is given, quoting its first words
// (so the citation verifies), and adds one fabricated quote (which must not).
function startFakeLlm() {
  return new Promise((resolve) => {
    const srv = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () =>
        setTimeout(() => {
          const messages = JSON.parse(body).messages;
          const user = messages[messages.length - 1].content;
          const m = /<passage id="(D\d+\.P\d+)"[^>]*>\n([^\n]+)/.exec(user);
          const content = m
            ? `${m[2]} _(Source: ${m[1]} "${m[2].split(/\s+/).slice(0, 8).join(" ")}")_ and it glows _(Source: ${m[1]} "the cells glow in the dark every night")_.`
            : "Answer not found in documents.";
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({
            choices: [{ message: { role: "assistant", content } }],
            usage: { prompt_tokens: 100, completion_tokens: 12 },
          }));
        }, 120));
    });
    srv.listen(0, "127.0.0.1", () => resolve(srv));
  });
}

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

// A whole-page screenshot, after checking that the page is no wider than the window (a table
// or a long name must wrap or scroll inside itself, never widen the page).
async function shot(page, name, options = {}) {
  const { scrollWidth, innerWidth, culprits } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    // The outermost elements that stick out, to say where the page is too wide.
    culprits: Array.from(document.querySelectorAll("body *"))
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .filter((e) => !(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth + 1))
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${e.className}`),
  }));
  assert.ok(scrollWidth <= innerWidth, `${name}: the page is ${scrollWidth}px wide in a ${innerWidth}px window (${culprits})`);
  await page.screenshot({ path: path.join(shots, `${name}.png`), ...options });
}

const VIEWPORT = { width: 1280, height: 800 };

before(async () => {
  mkdirSync(shots, { recursive: true });
  work = mkdtempSync(path.join(tmpdir(), "toxtemp-e2e-"));
  fakeLlm = await startFakeLlm();
  const env = {
    ...process.env,
    TOXTEMP_BIND: "127.0.0.1:0",
    ADMIN_EMAIL: STAFF.email,
    ADMIN_PASSWORD: STAFF.password,
    SESSION_KEY: "e2e-session-key-e2e-session-key-e2e-session-key",
    RUST_LOG: "info",
    LLM_BASE_URL: `http://127.0.0.1:${fakeLlm.address().port}/v1`,
    LLM_API_KEY: "e2e",
    TOXTEMP_LLM_KEY_E2E: "e2e-model-key",
  };
  for (const k of ["DATABASE_URL", "AWS_STORAGE_BUCKET_NAME"]) delete env[k];
  serverEnv = env;
  const made = spawnSync(bin, ["create-user", "--email", USER.email], { cwd: work, env: { ...env, TOXTEMP_PASSWORD: USER.password } });
  assert.equal(made.status, 0, `create-user with ${bin} failed: ${made.error ?? made.stderr}`);
  server = spawn(bin, ["serve"], { cwd: work, env });
  server.stderr.on("data", (chunk) => { serverLog += String(chunk).replace(/\x1b\[[0-9;]*m/g, ""); });
  base = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error("server did not start:\n" + seen)), 60000);
    server.stderr.on("data", (chunk) => {
      seen += chunk;
      const m = /listening on (http:\/\/[\d.:]+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
  fakeLlm?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function login(page, who) {
  await page.goto(base + "/login");
  await page.fill("#email", who.email);
  await page.fill("#password", who.password);
  await Promise.all([page.waitForURL(base + "/"), page.click("#login-form button[type=submit]")]);
}

async function startDrafting(page, title, share) {
  await page.goto(base + "/add/");
  const consent = page.locator("#share_files_for_development");
  assert.equal(await consent.isChecked(), true, "the consent box is checked by default");
  assert.equal(await page.locator("[name*=acknowledg]").count(), 0, "no acknowledgement field");
  await page.selectOption("#assay_id", "new");
  await page.fill("#new_investigation_title", "Neurotoxicity");
  await page.fill("#new_study_title", "LUHMES " + title);
  await page.fill("#new_assay_title", title);
  await page.fill("#new_assay_description", "Neurite outgrowth in LUHMES cells");
  await page.setInputFiles("#files", [path.join(fixtures, "sop.pdf"), path.join(fixtures, "paper.docx")]);
  if (!share) await consent.uncheck();
  await shot(page, `starting-form-${share ? "consent" : "no-consent"}`, { fullPage: true });
  await Promise.all([page.waitForURL(base + "/"), page.click("#start-submit")]);
  // The upload script navigates itself: the success message survives to the page.
  const message = await page.locator(".flash.alert-success").textContent();
  assert.match(message, /drafting has started/);
  assert.equal(/2 file\(s\) kept with your consent/.test(message), share, `the consent outcome is said: ${message}`);
  const row = page.locator("#assay-table tr", { hasText: title });
  const first = await row.locator(".badge").getAttribute("data-status");
  assert.ok(["scheduled", "busy"].includes(first), `the run is still going when the overview opens (${first})`);
  await shot(page, "overview-running");
  // The overview follows the run by itself: no reload here.
  await row.locator(".badge[data-status=done]").waitFor({ timeout: 120000 });
  assert.equal((await row.locator(".drafted-cell").textContent()).trim(), "77");
  return row;
}

test("a user drafts an assay from a PDF and a DOCX, edits and accepts; staff download the files", async () => {
  const context = await browser.newContext({ acceptDownloads: true, viewport: VIEWPORT });
  const page = await context.newPage();
  await login(page, USER);
  const row = await startDrafting(page, "NeuriTox", true);
  await shot(page, "overview-done", { fullPage: true });
  const assayId = await row.getAttribute("data-assay-id");

  await page.goto(`${base}/assays/${assayId}/answers`);
  assert.equal(await page.locator(".question").count(), 77);
  assert.ok((await page.locator(".answer-html .citation").count()) > 0, "answers carry citations");
  const kept = await page.locator(".kept-file").allTextContents();
  assert.ok(kept.includes("sop.pdf (cited)") && kept.includes("paper.docx (context)"), `the files each answer used: ${kept}`);
  await shot(page, "answers");

  // A citation opens its evidence: the passage with the quote marked; the fabricated one is flagged.
  const cited = page.locator(".question").first();
  assert.match(await cited.locator(".unverified-flag").textContent(), /1 citation could not be verified/);
  const badge = cited.locator(".answer-html a.citation").first();
  const evidence = page.locator("#" + (await badge.getAttribute("data-evidence")));
  assert.equal(await evidence.evaluate((d) => d.open), false, "closed until the badge is clicked");
  await badge.click();
  assert.equal(await evidence.evaluate((d) => d.open), true, "the badge opens the evidence");
  const marked = (await evidence.locator("mark").textContent()).trim();
  assert.ok(marked.length >= 10, `the quote is highlighted: ${marked}`);
  assert.ok((await evidence.locator(".evidence-passage").textContent()).includes(marked));
  await evidence.screenshot({ path: path.join(shots, "answer-evidence.png") });
  await cited.screenshot({ path: path.join(shots, "answer-with-evidence.png") });

  const first = page.locator(".question").first();
  const qid = await first.getAttribute("data-question-id");
  // The editor is loaded when "Edit" is opened.
  await first.locator(".answer-edit summary").click();
  await first.locator("textarea").fill("Edited in the browser: LUHMES neurite outgrowth assay.");
  await first.locator(".answer-form input[name=accepted]").check();
  await Promise.all([page.waitForURL(new RegExp(`/answers#q${qid}$`)), first.locator(".answer-form button[type=submit]").click()]);
  await page.reload();
  const again = page.locator(`#q${qid}`);
  assert.equal((await again.locator(".answer-html").textContent()).trim(), "Edited in the browser: LUHMES neurite outgrowth assay.");
  assert.equal(await again.locator(".accept-button").getAttribute("data-accepted"), "true");
  await again.locator(".answer-edit summary").click();
  assert.equal(await again.locator("textarea").inputValue(), "Edited in the browser: LUHMES neurite outgrowth assay.");
  assert.equal((await page.locator("#accepted-count").textContent()).trim(), "1");

  // A plain user is refused the admin pages.
  const refused = await page.goto(`${base}/admin/assays/${assayId}`);
  assert.equal(refused.status(), 403);
  await context.close();

  const staffContext = await browser.newContext({ acceptDownloads: true, viewport: VIEWPORT });
  const staff = await staffContext.newPage();
  await login(staff, STAFF);
  await staff.goto(`${base}/admin/assays/${assayId}`);
  await shot(staff, "admin-assay", { fullPage: true });
  const [download] = await Promise.all([staff.waitForEvent("download"), staff.click("#download-all")]);
  const zipPath = path.join(work, "download.zip");
  await download.saveAs(zipPath);
  const listing = spawnSync("python3", ["-c",
    "import hashlib,json,sys,zipfile;z=zipfile.ZipFile(sys.argv[1]);print(json.dumps({n:hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}))",
    zipPath]);
  assert.equal(listing.status, 0, String(listing.stderr));
  const entries = JSON.parse(String(listing.stdout));
  for (const name of ["sop.pdf", "paper.docx"]) {
    assert.equal(entries[`files/${name}`], sha256(readFileSync(path.join(fixtures, name))), `${name} matches by SHA-256`);
  }
  assert.ok("index.csv" in entries && "manifest.csv" in entries);
  await staff.goto(base + "/admin/downloads");
  assert.equal(await staff.locator("#download-log tbody tr").count(), 2, "one log row per file");
  await shot(staff, "admin-downloads");
  await staffContext.close();
});

test("with the box unchecked the same run stores nothing", async () => {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  await login(page, USER);
  const row = await startDrafting(page, "Private run", false);
  const assayId = await row.getAttribute("data-assay-id");
  await page.goto(`${base}/assays/${assayId}`);
  assert.equal((await page.locator("#stored-files").textContent()).trim(), "none");
  await page.goto(`${base}/assays/${assayId}/answers`);
  assert.equal(await page.locator(".kept-file").count(), 0);
  await context.close();

  const staffContext = await browser.newContext({ viewport: VIEWPORT });
  const staff = await staffContext.newPage();
  await login(staff, STAFF);
  await staff.goto(`${base}/admin/assays/${assayId}`);
  assert.equal(await staff.locator("#no-files").count(), 1);
  await staff.goto(base + "/admin/files");
  assert.equal(await staff.locator("#file-table tbody tr").count(), 2, "only the first run's two files exist");
  await shot(staff, "admin-files", { fullPage: true });
  await staffContext.close();
});

test("staff freeze a benchmark set from the kept assay, run it twice and compare the runs", async () => {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const staff = await context.newPage();
  await login(staff, STAFF);
  await staff.goto(base + "/admin/benchmarks");
  // Only the assay whose documents were kept can become a case.
  assert.equal(await staff.locator("#candidates tbody tr").count(), 1);
  await staff.locator("#candidates input[name=assay]").first().check();
  await staff.fill("#set-name", "NeuriTox as accepted");
  await Promise.all([staff.waitForURL(/\/admin\/benchmarks\/\d+$/), staff.click("#freeze-set")]);
  const setUrl = staff.url();
  assert.equal((await staff.locator("#cases tbody tr td").nth(2).textContent()).trim(), "1", "the one accepted answer is the gold");

  async function startRun(label, useEndpoint) {
    await staff.goto(setUrl);
    await staff.fill("#run-label", label);
    if (!useEndpoint) await staff.fill("#run-base-url", "");
    await staff.fill("#run-concurrency", "8");
    await Promise.all([staff.waitForURL(/\/runs\/\d+$/), staff.click("#start-run-button")]);
    // The page reloads itself until the run is done.
    await staff.locator("#run-status[data-status=done]").waitFor({ timeout: 120000 });
    assert.equal((await staff.locator("#overall .questions").textContent()).trim(), "77");
    return staff.url().split("/").pop();
  }
  const offline = await startRun("offline", false);
  await shot(staff, "benchmark-run", { fullPage: true });
  const endpoint = await startRun("fake endpoint", true);
  assert.match(await staff.locator("#overall .citation-verification").textContent(), /^50\.0 %/, "one quote verifies, one is invented");

  await staff.goto(setUrl);
  await staff.locator(`#runs input[value="${offline}"]`).check();
  await staff.locator(`#runs input[value="${endpoint}"]`).check();
  await Promise.all([staff.waitForURL(/\/compare\?/), staff.click("#compare-runs")]);
  assert.equal(await staff.locator("#comparison thead th").count(), 3);
  assert.equal(await staff.locator("#charts svg").count(), 2, "the per-section charts are drawn");
  assert.ok((await staff.locator("#charts svg rect.bar").count()) >= 2);
  await staff.setViewportSize({ width: 1280, height: 1100 });
  await shot(staff, "benchmark-compare");
  await Promise.all([staff.waitForURL(/\/compare\/\d+\/\d+\?/), staff.locator("a.drill-down").first().click()]);
  assert.equal(await staff.locator(".run-answer").count(), 2);
  await shot(staff, "benchmark-question", { fullPage: true });
  await context.close();
});

test("the answer page filters, leads to open answers, marks them for update and saves from the keyboard", async () => {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  await login(page, USER);
  await page.goto(base + "/");
  const assayId = await page.locator("#assay-table tr", { hasText: "NeuriTox" }).getAttribute("data-assay-id");
  await page.goto(`${base}/assays/${assayId}/answers`);
  const visible = () => page.locator(".question:visible").count();
  assert.equal(await visible(), 77);
  // One answer was accepted in the first test: "Not accepted" hides it, without a reload.
  await page.click("#answer-filter .filter-open");
  assert.equal(await visible(), 76);
  assert.match(page.url(), /\?show=open/);
  await page.click("#answer-filter .filter-not-found");
  const notFound = await visible();
  assert.ok(notFound > 0 && notFound < 77, `only the not-found answers: ${notFound}`);
  await shot(page, "answers-filter-not-found");
  await page.click("#answer-filter .filter-all");
  assert.equal(await visible(), 77);

  // Progress per section, and the jump to the next open answer.
  assert.match(await page.locator(".section-accepted").first().textContent(), /^1 of \d+ accepted$/);
  const firstOpen = await page.locator("#first-unaccepted").getAttribute("href");
  assert.equal(await page.locator(`${firstOpen}`).getAttribute("data-accepted"), "false");
  await page.click("#first-unaccepted");
  assert.match(page.url(), new RegExp(`${firstOpen}$`));
  await page.locator(".guidance summary").first().click();
  assert.ok((await page.locator(".guidance[open] div").first().textContent()).trim().length > 10, "the guidance opens");

  // "Mark all open for update" ticks every answer not accepted.
  await page.click("#mark-open");
  assert.equal(await page.locator('.question[data-accepted="false"] input[name=question_ids]:checked').count(), 76);
  assert.equal(await page.locator('.question[data-accepted="true"] input[name=question_ids]:checked').count(), 0);

  // Ctrl+Enter saves the answer being edited; the history shows the change word by word.
  const card = page.locator(firstOpen);
  await card.locator(".answer-edit summary").click();
  const area = card.locator("textarea");
  await area.fill("Cells are seeded at 100 cells per well.");
  await Promise.all([page.waitForURL(/\/answers#q\d+$/), area.press("Control+Enter")]);
  await card.locator(".answer-edit summary").click();
  await card.locator("textarea").fill("Cells are seeded at 200 cells per well.");
  await Promise.all([page.waitForURL(/\/answers#q\d+$/), card.locator("textarea").press("Control+Enter")]);
  await card.locator(".answer-edit summary").click();
  assert.equal((await card.locator(".history-entry").first().locator("del").textContent()).trim(), "100");
  assert.equal((await card.locator(".history-entry").first().locator("ins").textContent()).trim(), "200");
  await card.screenshot({ path: path.join(shots, "answer-history-diff.png") });
  await shot(page, "answers-tools");
  await context.close();
});

test("staff sort the lists and open a stored file's page", async () => {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const staff = await context.newPage();
  await login(staff, STAFF);
  await staff.goto(base + "/admin/files");
  await staff.click("th[data-sort=name] a");
  assert.equal(await staff.locator("th[data-sort=name]").getAttribute("aria-sort"), "ascending");
  const names = await staff.locator("#file-table .file-name").allTextContents();
  assert.deepEqual(names.map((n) => n.trim()), ["paper.docx", "sop.pdf"]);
  await staff.locator("#file-table details.linked-answers summary").first().click();
  assert.ok((await staff.locator("#file-table details.linked-answers[open] li").count()) > 0, "the answers open on demand");
  await shot(staff, "admin-files-sorted", { fullPage: true });
  await staff.fill("input[name=q]", "sop");
  await Promise.all([staff.waitForURL(/q=sop/), staff.press("input[name=q]", "Enter")]);
  assert.equal(await staff.locator("#file-table tbody tr").count(), 1);
  await staff.click("#file-table .file-name a");
  assert.equal((await staff.locator("#file-title").textContent()).trim(), "sop.pdf");
  assert.equal((await staff.locator("#file-sha256").textContent()).trim(), sha256(readFileSync(path.join(fixtures, "sop.pdf"))));
  assert.ok((await staff.locator("#file-answers li").count()) > 0);
  assert.equal(await staff.locator("#file-downloads tbody tr").count(), 1, "the ZIP download of the first test");
  await shot(staff, "admin-file", { fullPage: true });
  await staff.goto(base + "/admin/assays?sort=title");
  await shot(staff, "admin-assays-sorted");
  await context.close();
});

test("staff add a language model, test its connection, and its runs show tokens and cost", async () => {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const staff = await context.newPage();
  await login(staff, STAFF);
  await staff.goto(base + "/admin/models");
  await staff.click("#new-model");
  await staff.fill("#name", "Fake endpoint (priced)");
  await staff.fill("#base_url", `http://127.0.0.1:${fakeLlm.address().port}/v1`);
  await staff.fill("#model", "fake-model");
  await staff.fill("#api_key_env", "TOXTEMP_LLM_KEY_E2E");
  await staff.fill("#context_window", "128000");
  await staff.fill("#price_prompt_per_mtok", "2.5");
  await staff.fill("#price_completion_per_mtok", "10");
  await Promise.all([staff.waitForURL(/\/admin\/models$/), staff.click("#model-form button[type=submit]")]);
  const row = staff.locator("tr.model-entry").nth(1);
  assert.equal((await row.locator(".key-state").textContent()).trim(), "set");
  await Promise.all([staff.waitForURL(/\/test$/), row.locator("button", { hasText: "Test connection" }).click()]);
  assert.equal(await staff.locator("#test-result").getAttribute("data-ok"), "true");
  await shot(staff, "admin-models", { fullPage: true });
  await staff.goto(base + "/admin/assays");
  await staff.locator("a[href^='/admin/assays/']").first().click();
  assert.ok((await staff.locator("#runs tbody tr").count()) >= 1, "the assay's runs are listed");
  await shot(staff, "admin-assay-runs", { fullPage: true });
  await context.close();
});

test("the answers export as Word, PDF and one self-contained HTML file", async () => {
  const context = await browser.newContext({ acceptDownloads: true, viewport: VIEWPORT });
  const page = await context.newPage();
  await login(page, USER);
  await page.goto(base + "/");
  const assayId = await page.locator("#assay-table tr", { hasText: "NeuriTox" }).getAttribute("data-assay-id");
  await page.goto(`${base}/assays/${assayId}/answers`);
  const saved = {};
  for (const [button, ext, magic] of [["#export-docx", "docx", "PK"], ["#export-pdf", "pdf", "%PDF"], ["#export-html", "html", "<!DOCTYPE html>"]]) {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(button)]);
    assert.match(download.suggestedFilename(), new RegExp(`^toxtemp-assay-${assayId}-NeuriTox\\.${ext}$`));
    saved[ext] = path.join(work, `export.${ext}`);
    await download.saveAs(saved[ext]);
    assert.ok(readFileSync(saved[ext]).subarray(0, magic.length).toString().toUpperCase() === magic.toUpperCase(), `${ext} starts with ${magic}`);
  }
  // The HTML file needs nothing else: opened from disk, it shows the answers and the kept files' hashes.
  await page.goto("file://" + saved.html);
  assert.ok((await page.content()).includes(sha256(readFileSync(path.join(fixtures, "sop.pdf")))));
  assert.ok((await page.locator("body").textContent()).includes("Cells are seeded at 200 cells per well."));
  await shot(page, "export-html");
  await context.close();
});

// Without SMTP the server logs the password link for the operator: the newest one for `email`.
async function linkFromLog(email) {
  for (let i = 0; i < 50; i++) {
    const lines = serverLog.split("\n").filter((l) => l.includes(email) && l.includes("/password-reset/"));
    const m = lines.length && /link=(\S+\/password-reset\/[\w-]+)/.exec(lines[lines.length - 1]);
    if (m) return m[1];
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no password link for ${email} in the log`);
}

async function choosePassword(page, link, password) {
  await page.goto(link);
  await page.fill("#new_password", password);
  await page.fill("#new_password_repeat", password);
  await Promise.all([page.waitForURL(/\/login/), page.click("#new-password-form button[type=submit]")]);
}

test("staff invite a colleague, who sets a password, changes it, and is stopped when deactivated", async () => {
  const staffContext = await browser.newContext({ viewport: VIEWPORT });
  const staff = await staffContext.newPage();
  await login(staff, STAFF);
  await staff.goto(base + "/admin/accounts");
  await staff.click("#new-account summary");
  await staff.fill("#new-email", "newcomer@example.org");
  await staff.fill("#new-name", "New Comer");
  await Promise.all([staff.waitForURL(/\/admin\/accounts/), staff.click("#new-account-form button[type=submit]")]);
  assert.equal(await staff.locator('#admin-accounts tr[data-email="newcomer@example.org"]').count(), 1);
  await shot(staff, "admin-accounts", { fullPage: true });

  const NEWCOMER = { email: "newcomer@example.org", password: "first password 1" };
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  await choosePassword(page, await linkFromLog(NEWCOMER.email), NEWCOMER.password);
  await login(page, NEWCOMER);
  await page.click("[data-testid=current-user]");
  assert.equal((await page.locator("#account-email").textContent()).trim(), NEWCOMER.email);
  await page.fill("#current_password", NEWCOMER.password);
  await page.fill("#new_password", "second password 2");
  await page.fill("#new_password_repeat", "second password 2");
  await page.click("#password-form button[type=submit]");
  assert.match(await page.locator(".flash.alert-success").textContent(), /password/i);
  await shot(page, "account", { fullPage: true });

  // Deactivated by staff: the open session stops working at once.
  const row = staff.locator('#admin-accounts tr[data-email="newcomer@example.org"]');
  await Promise.all([staff.waitForURL(/\/admin\/accounts/), row.locator("button", { hasText: "Deactivate" }).click()]);
  assert.match(await row.locator(".account-active").textContent(), /deactivated/);
  await page.goto(base + "/");
  assert.match(page.url(), /\/login/);
  await context.close();
  await staffContext.close();
});

test("a forgotten password is reset with the link the operator passes on", async () => {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  await page.goto(base + "/login");
  await page.click("#forgot-password");
  await page.fill("#email", USER.email);
  await page.click("#reset-request-form button[type=submit]");
  assert.match(await page.locator("#reset-requested").textContent(), /administrator/i, "no SMTP here: ask the operator");
  await shot(page, "password-reset-requested");
  const link = await linkFromLog(USER.email);
  await page.goto(link);
  await shot(page, "password-reset-form");
  USER.password = "reset password 3";
  await choosePassword(page, link, USER.password);
  await login(page, USER);
  await page.goto(link);
  assert.equal(await page.locator("#reset-invalid").count(), 1, "a link works once");
  await context.close();
});

test("a workspace shares an investigation: a colleague uploads and accepts, and loses access once removed", async () => {
  const B = { email: "colleague@example.org", password: "colleague password 1" };
  const made = spawnSync(bin, ["create-user", "--email", B.email], { cwd: work, env: { ...serverEnv, TOXTEMP_PASSWORD: B.password } });
  assert.equal(made.status, 0, `create-user failed: ${made.stderr}`);
  const a = await (await browser.newContext({ viewport: VIEWPORT })).newPage();
  const b = await (await browser.newContext({ viewport: VIEWPORT })).newPage();
  for (const page of [a, b]) page.on("dialog", (dialog) => dialog.accept());
  await login(a, USER);
  await login(b, B);

  // A: an investigation with a study and an assay, a workspace with B in it, the investigation shared.
  await a.goto(base + "/investigations/new");
  await a.fill("#title", "Shared neurotoxicity");
  await Promise.all([a.waitForURL(/\/investigations\/\d+$/), a.click("main form.col-lg-8 button[type=submit]")]);
  const investigation = a.url();
  await a.goto(investigation + "/studies/new");
  await a.fill("#title", "LUHMES shared");
  await Promise.all([a.waitForURL(/\/studies\/\d+$/), a.click("main form.col-lg-8 button[type=submit]")]);
  await a.goto(a.url() + "/assays/new");
  await a.fill("#title", "SharedTox");
  await Promise.all([a.waitForURL(/\/assays\/\d+$/), a.click("main form.col-lg-8 button[type=submit]")]);
  const assayId = /\/assays\/(\d+)$/.exec(a.url())[1];
  await a.goto(base + "/workspaces");
  await a.fill("#workspace-name", "Neurotox lab");
  await Promise.all([a.waitForURL(/\/workspaces\/\d+$/), a.click("#new-workspace button[type=submit]")]);
  const workspace = a.url();
  await a.fill("#member-email", B.email);
  await Promise.all([a.waitForURL(workspace), a.click("#add-member button[type=submit]")]);
  assert.deepEqual((await a.locator("#members .role").allTextContents()).map((t) => t.trim()), ["owner", "member"]);
  await a.goto(investigation);
  await a.selectOption("#share-workspace", { label: "Neurotox lab" });
  await Promise.all([a.waitForURL(investigation), a.click("#share-form button[type=submit]")]);
  assert.deepEqual(await a.locator("#shared-in a").allTextContents(), ["Neurotox lab"]);
  await a.goto(workspace);
  assert.deepEqual(await a.locator("#shared-investigations a").allTextContents(), ["Shared neurotoxicity"]);
  await shot(a, "workspace", { fullPage: true });

  // B: the assay is shared with them; they upload documents into it with their consent.
  await b.goto(base + "/");
  const row = b.locator(`#shared-table tr[data-assay-id="${assayId}"]`);
  assert.equal(await row.count(), 1, "Shared with me lists A's assay");
  await b.goto(`${base}/add/?assay=${assayId}`);
  await b.setInputFiles("#files", [path.join(fixtures, "sop.pdf"), path.join(fixtures, "paper.docx")]);
  await Promise.all([b.waitForURL(base + "/"), b.click("#start-submit")]);
  await row.locator(".badge[data-status=done]").waitFor({ timeout: 120000 });
  await shot(b, "overview-shared-with-me", { fullPage: true });
  await b.goto(`${base}/assays/${assayId}`);
  assert.equal(await b.locator("#kept-files .uploader", { hasText: B.email }).count(), 2, "B's files show B as uploader");
  assert.equal(await b.locator("#delete-assay").count(), 0, "only the owner deletes");
  await b.goto(`${base}/assays/${assayId}/answers`);
  const first = b.locator(".question").first();
  await Promise.all([b.waitForURL(/\/answers/), first.locator(".accept-button").click()]);
  assert.equal(await b.locator(".question").first().locator(".accept-button").getAttribute("data-accepted"), "true");

  // A sees it accepted, then removes B, who gets 404 on the assay from then on.
  await a.goto(`${base}/assays/${assayId}/answers`);
  assert.equal(await a.locator(".question").first().locator(".accept-button").getAttribute("data-accepted"), "true");
  assert.equal((await a.locator("#accepted-count").textContent()).trim(), "1");
  await a.goto(workspace);
  await Promise.all([a.waitForURL(workspace), a.locator("#members tr", { hasText: B.email }).locator(".remove-member").click()]);
  assert.equal(await a.locator("#members tr", { hasText: B.email }).count(), 0);
  const gone = await b.goto(`${base}/assays/${assayId}`);
  assert.equal(gone.status(), 404);
  await b.goto(base + "/");
  assert.equal(await b.locator("#shared-table").count(), 0, "nothing is shared with B any more");
});
