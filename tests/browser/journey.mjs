// Trellis in a real browser: Debian's headless Chromium driven by playwright-core.
//
// `node journey.mjs <step>` runs one step of the journey; the Rust test
// (tests/e2e/tests/suite/browser.rs) starts Trellis, runs the steps in order and does what
// happens outside the browser in between (the CLI inside the workspace, the test's operator).
// Each step signs in afresh, asserts what a person would see, and saves screenshots to
// $TRELLIS_SCREENSHOTS. A failed assertion exits non-zero with the reason (and a screenshot).
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const env = process.env;
const base = need("TRELLIS_URL");
const shots = need("TRELLIS_SCREENSHOTS");
const project = env.TRELLIS_PROJECT ?? "";
mkdirSync(shots, { recursive: true });

function need(name) {
  const value = env[name];
  if (!value) fail(`${name} is not set`);
  return value;
}

function fail(message) {
  console.error(`journey: ${message}`);
  process.exit(1);
}

class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}

async function launch() {
  return chromium.launch({
    executablePath: env.CHROMIUM ?? "/usr/bin/chromium",
    // The machine's network is closed: no background traffic, no component updates.
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function text(locator) {
  await locator.first().waitFor({ timeout: 15_000 });
  return (await locator.first().innerText()).trim();
}

/// Sign-in through Trellis and the OpenID Provider's own login form.
async function signIn(page, user, returnTo = "/") {
  await page.goto(`${base}/auth/login?return_to=${encodeURIComponent(returnTo)}`);
  await page.locator('input[name="login"]').fill(`${user}@trellis.example`);
  await page.locator('input[name="password"]').fill(`${user}-password`);
  await Promise.all([
    page.waitForURL((url) => url.href.startsWith(base), { timeout: 15_000 }),
    page.locator('button[type="submit"]').click(),
  ]);
  const who = await text(page.locator("#signed-in-as"));
  check(who.length > 0, `${user} is shown as signed in`);
}

/// Reloads until `predicate` holds (e.g. an operator or the cluster has caught up).
async function eventually(page, what, predicate, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Failure(`timed out waiting for ${what}`);
    await page.waitForTimeout(1000);
    await page.reload();
  }
}

async function submitForm(page, formSelector) {
  const form = page.locator(formSelector);
  await Promise.all([
    page.waitForEvent("load", { timeout: 20_000 }),
    form.locator('button[type="submit"]').click(),
  ]);
}

const steps = {
  // An admin creates the project in the browser (the test then labels it for its operator).
  async "admin-create"(page) {
    await signIn(page, "admin");
    await shot(page, "01-admin-home");
    await page.goto(`${base}/projects`);
    const form = page.locator("#create-project");
    await form.locator("#p-name").fill(project);
    await form.locator("#p-title").fill("Hospital admissions and air quality");
    await form.locator("#p-purpose").fill("Whether days of poor air quality are followed by more respiratory admissions.");
    const today = new Date();
    const next = new Date(today.getTime() + 365 * 86_400_000);
    await form.locator("#p-start").fill(today.toISOString().slice(0, 10));
    await form.locator("#p-end").fill(next.toISOString().slice(0, 10));
    await form.locator("#p-members").fill("alice owner\nbob researcher\nann analyst");
    await form.locator("#p-datasets").fill("hes-apc: Hospital Episode Statistics, admitted patient care");
    await form.locator("#p-templates").fill("jupyter");
    await shot(page, "02-admin-create-project");
    await Promise.all([
      page.waitForURL(`${base}/projects/${project}`, { timeout: 20_000 }),
      form.locator('button[type="submit"]').click(),
    ]);
    check((await text(page.locator("h1"))).includes("Hospital admissions"), "the new project's page");
    check((await text(page.locator("dl.facts"))).includes("Awaiting approval"), "a new project awaits approval");
  },

  async "admin-approve"(page) {
    await signIn(page, "admin", `/projects/${project}`);
    await page.locator("#approval-ref").fill("DAC-2026-117");
    await submitForm(page, "#approve");
    await eventually(page, "the project to become Active", async () =>
      (await text(page.locator("h1 .badge"))) === "Active");
    await shot(page, "03-admin-project");
    await page.goto(`${base}/admin/templates`);
    check((await text(page.locator("#templates"))).includes("/files/"), "the jupyter template's blocked paths are listed");
    await shot(page, "04-admin-templates");
    await page.goto(`${base}/admin/audit?project=${project}`);
    const log = await text(page.locator("#audit-records"));
    check(log.includes("project.approve") && log.includes("project.create"), "the audit log shows the creation and approval");
    await shot(page, "05-admin-audit");
  },

  // An analyst (DataSHIELD only) sees her project without workspaces or the airlock, and makes a
  // personal access token for her DataSHIELD client: shown once, then only listed.
  async "analyst-token"(page) {
    await signIn(page, "ann", `/projects/${project}`);
    check((await text(page.locator("#datashield + p"))).includes("personal access token"), "the project page points an analyst to tokens");
    check(await page.locator("#new-workspace").count() === 0, "an analyst is offered no workspace");
    check(await page.locator("#new-request").count() === 0, "an analyst is offered no airlock request");
    await page.locator('header.site a[href="/tokens"]').click();
    await page.waitForURL(`${base}/tokens`);
    check((await text(page.locator("#no-tokens"))).includes("no personal access tokens"), "no tokens yet");
    const form = page.locator("#new-token");
    await form.locator("#token-name").fill("R on my laptop");
    await form.locator(`input[name="projects"][value="${project}"]`).check();
    // The date picker offers nothing past the project's end (the API refuses it too: api_tokens).
    check(await form.locator("#token-expires").getAttribute("max") !== null, "the expiry has a latest day");
    const expires = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    await form.locator("#token-expires").fill(expires);
    await form.locator('button[type="submit"]').click();
    const shown = page.locator("#new-token-shown");
    await shown.waitFor({ state: "visible", timeout: 15_000 });
    const token = await text(shown.locator("#new-token-value"));
    check(/^trellis_pat_[A-Za-z0-9_-]{43}$/.test(token), `the new token is shown (${token.length} characters)`);
    check((await text(shown)).includes("will not be shown again"), "the page says the token is shown once");
    await shot(page, "tokens");
    await page.goto(`${base}/tokens`);
    const row = page.locator("#tokens tbody tr");
    check(await row.count() === 1, "the new token is listed");
    check((await text(row)).includes("R on my laptop") && (await text(row)).includes(expires), "by its name and expiry");
    check(!(await page.content()).includes(token), "and never shown again");
  },

  // The researcher requests a workspace, sees it Running, opens JupyterLab and runs a cell.
  async "researcher-workspace"(page) {
    await signIn(page, "alice");
    check((await text(page.locator("#my-projects + ul"))).includes("Hospital admissions"), "alice's home lists her project");
    await shot(page, "06-researcher-home");
    await page.goto(`${base}/projects/${project}`);
    await page.locator("#ws-name").fill("analysis");
    await page.locator("#ws-template").selectOption("jupyter");
    await submitForm(page, "#new-workspace");
    const row = page.locator('tr[data-workspace="analysis"]');
    // The status column refreshes itself; the Open link appears once the workspace is Running.
    await row.locator("a.open").waitFor({ state: "visible", timeout: 60_000 });
    check((await text(row.locator(".phase"))) === "Running", "the workspace shows Running");
    await shot(page, "07-researcher-workspace-running");
    await row.locator("a.open").click();
    // The program may still be starting: the gateway's page retries by itself until it answers.
    await page.waitForURL(/\/w\/.+\/analysis\/lab/, { timeout: 90_000 });
    const notebook = page.locator('.jp-LauncherCard[data-category="Notebook"]').first();
    await notebook.waitFor({ timeout: 60_000 });
    await shot(page, "08-jupyterlab-launcher");
    await notebook.click();
    const editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first();
    await editor.waitFor({ timeout: 60_000 });
    // The kernel's status comes over its WebSocket, through the gateway: wait until it is idle
    // (connected and started) before running code, as a person would.
    await page.getByText(/ipykernel\)\s*\|\s*Idle/).first().waitFor({ timeout: 90_000 });
    await editor.click();
    await page.keyboard.type("print(6 * 7)");
    await page.keyboard.press("Shift+Enter");
    const output = page.locator(".jp-OutputArea-output").first();
    await output.waitFor({ timeout: 90_000 });
    check((await output.innerText()).trim() === "42", "the cell printed 42");
    await shot(page, "09-jupyterlab-cell");
  },

  // Two output checkers review the request the workspace submitted with the CLI.
  async "checker-vote"(page) {
    const user = need("TRELLIS_USER");
    await signIn(page, user);
    await page.goto(`${base}/review`);
    const link = page.locator("#queue a", { hasText: need("TRELLIS_REQUEST_TITLE") });
    await link.waitFor({ timeout: 15_000 });
    await shot(page, `10-${user}-queue`);
    await link.click();
    await page.locator("#votes").waitFor({ timeout: 15_000 });
    check(await page.locator("table.data").count() > 0, "the CSV is shown as a table");
    check((await page.locator("td.flag-fail, td.flag-warn").count()) > 0, "the flagged cells are highlighted");
    await shot(page, `11-${user}-review-screen`);
    for (const fieldset of await page.locator("#votes fieldset").all()) {
      await fieldset.locator('input[value="approve"]').check();
      await fieldset.locator("textarea").fill(`Checked by ${user}.`);
    }
    await submitForm(page, "#votes");
    check(await page.locator("#votes").count() === 0, "a reviewer votes once per round");
    if (env.TRELLIS_DECIDE === "1") {
      check((await text(page.locator("h1 .badge"))) === "reviewed", "both reviews are in");
      await shot(page, `12-${user}-outcome`);
      await page.locator("#outcome-choice").selectOption("approve");
      await page.locator("#outcome-comment").fill("Aggregate counts; safe to release.");
      await submitForm(page, "#decide");
      check((await text(page.locator("h1 .badge"))) === "released", "the request is released");
      await shot(page, "13-released");
    }
  },

  async "researcher-download"(page) {
    await signIn(page, "alice", `/projects/${project}`);
    const link = page.locator("#released-files a").first();
    await link.waitFor({ timeout: 15_000 });
    await shot(page, "14-researcher-released");
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const saved = await download.path();
    const expected = readFileSync(need("TRELLIS_EXPECT_FILE"));
    check(readFileSync(saved).equals(expected), "the downloaded file is the released file");
  },

  // A data steward brings a file in, with the upload's progress shown.
  async "steward-ingress"(page) {
    await signIn(page, "steward");
    await page.goto(`${base}/review`);
    await page.locator("#in-project").selectOption(project);
    await page.locator("#in-title").fill("Air quality by postcode district");
    await page.locator("#in-context").fill("DEFRA AURN daily means, 2024.");
    await shot(page, "15-steward-queue");
    await Promise.all([
      page.waitForURL(/\/airlock\//, { timeout: 20_000 }),
      page.locator('#new-ingress button[type="submit"]').click(),
    ]);
    await page.locator("#upload-files").setInputFiles(need("TRELLIS_INGRESS_FILE"));
    await submitForm(page, "#upload");
    check((await text(page.locator("article.file h3"))).length > 0, "the uploaded file is listed");
    await submitForm(page, "#submit");
    check((await text(page.locator("h1 .badge"))) === "in review", "the ingress request is in review");
    await shot(page, "16-steward-ingress");
  },

  // The analyst sees the project's DataSHIELD server, its table, where to connect, and her calls
  // (one refused by the disclosure rules) on the project's page.
  async "analyst-datashield"(page) {
    await signIn(page, "ann", `/projects/${project}`);
    const section = page.locator("#datashield-section");
    await eventually(page, "the server to show as ready", async () =>
      (await text(section.locator("#datashield-state"))).includes("Ready"));
    check((await text(section.locator("#datashield-tables"))).includes(`${project}.air_quality`), "the table is listed");
    check((await text(section.locator("#datashield-address"))).endsWith(`/datashield/${project}`), "the address to connect to is shown");
    const calls = await text(section.locator("#datashield-activity"));
    check(calls.includes("meanDS(D$pm25)") && calls.includes("refused"), "the refused call is listed with its outcome");
    check(calls.includes("ann"), "calls name who made them");
    await shot(page, "datashield");
  },

  async "admin-close"(page) {
    await signIn(page, "admin", `/projects/${project}`);
    page.on("dialog", (dialog) => dialog.accept());
    await submitForm(page, "#close-project");
    await eventually(page, "the project to close", async () =>
      (await text(page.locator("h1 .badge"))) === "Closed", 120);
    check((await text(page.locator("#teardown + p"))).includes("deleted"), "the teardown record is shown");
    await shot(page, "17-admin-closed");
  },

  async register(page) {
    await page.goto(`${base}/register`);
    const row = page.locator(`#register tr[data-project="${project}"]`);
    check((await text(row.locator(".state"))) === "Closed", "the register shows the project as closed");
    check((await text(row.locator(".released"))) === need("TRELLIS_EXPECT_RELEASED"), "the register counts its released outputs");
    const page_text = await text(page.locator("main"));
    check(!page_text.includes("alice") && !page_text.includes("bob"), "the register names no members");
    await shot(page, "18-public-register");
  },
};

const step = process.argv[2];
if (!steps[step]) fail(`unknown step ${step}; one of: ${Object.keys(steps).join(", ")}`);
const browser = await launch();
const page = await (await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } })).newPage();
page.setDefaultTimeout(20_000);
// Any script error on a Trellis page is a failure (CSP violations included).
const pageErrors = [];
page.on("pageerror", (error) => { if (page.url().startsWith(base) && !page.url().includes("/w/")) pageErrors.push(error.message); });
page.on("console", (message) => {
  if (message.type() === "error" && page.url().startsWith(base) && !page.url().includes("/w/")) pageErrors.push(message.text());
});
try {
  await steps[step](page);
  check(pageErrors.length === 0, `errors on Trellis pages: ${pageErrors.join(" | ")}`);
  console.log(`journey: ${step} passed`);
} catch (error) {
  await shot(page, `failed-${step}`).catch(() => {});
  console.error(`journey: ${step} failed at ${page.url()}: ${error instanceof Failure ? error.message : error.stack}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
