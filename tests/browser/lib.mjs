// Helpers of the browser tests of the console and the portal: the vault's API (with the root
// token), Chromium, a screenshot of the page when a step fails, axe-core, and the mail the vault
// sent (the folder smtp-sink.mjs writes to).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';

/** The vault's address and root token, from tests/browser/run. */
export const vault = process.env.BUNKER_URL ?? assert.fail('BUNKER_URL is not set: run tests/browser/run');
const rootToken = process.env.BUNKER_ROOT_TOKEN ?? assert.fail('BUNKER_ROOT_TOKEN is not set');
const artifacts = process.env.BROWSER_ARTIFACTS ?? 'browser-artifacts';
/** Where smtp-sink.mjs writes the vault's mail (tests/browser/run sets it). */
const mailDir = process.env.MAIL_DIR;

/** The console's message for a POST without the right `csrf` field (the contract's wording). */
export const CSRF_REFUSED =
  'The form has expired or did not come from this console: reload the page and try again.';

/** A string unique to this run, for usernames, emails and names. */
export function unique(prefix) {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/** Calls operation `op` of the API (as root unless `token` says otherwise); answers the JSON body. */
export async function api(op, body = {}, { token = rootToken, expect = 'ok' } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers['x-bunker-token'] = token;
  const response = await fetch(`${vault}/v2/${op}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const json = await response.json();
  if (expect === 'ok') assert.equal(json.status, 'ok', `${op}: ${JSON.stringify(json)}`);
  return json;
}

/** An account invited with AccountCreate and activated through the API; answers its credentials. */
export async function activeAccount(fields) {
  const username = unique('acct');
  const password = `${unique('pass-')} correct horse battery`;
  const email = `${username}@example.com`;
  const created = await api('AccountCreate', { username, email, ...fields });
  await api('AccountActivate', { token: await invitationToken(created, email), password }, { token: null });
  return { username, password, accountid: created.accountid };
}

/**
 * The activation token of an account AccountCreate invited (`created`, its answer): with a mail
 * server (tests/browser/run gives the vault the sink) it was mailed to `email` and is not in the
 * answer; without one the answer carries it.
 */
export async function invitationToken(created, email) {
  if (!mailDir) {
    assert.equal(created.mailed, false, `an invitation mailed with no mail server: ${JSON.stringify(created)}`);
    return created.activationtoken ?? assert.fail(`no activationtoken: ${JSON.stringify(created)}`);
  }
  assert.equal(created.mailed, true, `the invitation was not mailed: ${JSON.stringify(created)}`);
  assert.equal(created.activationtoken, undefined, 'a mailed invitation\'s token is in the answer too');
  const mail = await mailTo(email);
  const token = /Activation token: ([0-9a-f]{64})\b/.exec(mailBody(mail))?.[1];
  return token ?? assert.fail(`no activation token in the invitation to ${email}:\n${mail}`);
}

/** Chromium from the Debian package, headless. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

/** A fresh browser context (its own cookies; `options` as newContext takes) and page, with short timeouts. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ baseURL: vault, ...options });
  context.setDefaultTimeout(10_000);
  return context.newPage();
}

/** Saves a full-page screenshot of `page` under the artifacts folder; never throws. */
export async function screenshot(page, name) {
  if (!page || page.isClosed()) return;
  try {
    mkdirSync(artifacts, { recursive: true });
    const file = join(artifacts, `${name.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 100)}.png`);
    await page.screenshot({ path: file, fullPage: true });
  } catch (err) {
    console.error(`screenshot of ${name} failed: ${err.message}`);
  }
}

/**
 * Steps of a scenario sharing one page: `step(name, fn)` is a test that screenshots `getPage()` when
 * it fails; once a step failed, the later ones are skipped (they would fail for the same reason),
 * unless the steps are `independent`.
 */
export function steps(getPage, { independent = false } = {}) {
  let broken = null;
  return (name, fn) =>
    test(name, async (t) => {
      if (broken) {
        t.skip(`an earlier step failed: ${broken}`);
        return;
      }
      try {
        await fn(t);
      } catch (err) {
        if (!independent) broken = name;
        await screenshot(getPage(), name);
        throw err;
      }
    });
}

/** A test with a page of its own, screenshotted when the test fails. */
export function pageTest(name, getBrowser, fn) {
  return test(name, async (t) => {
    const page = await newPage(getBrowser());
    try {
      await fn(page, t);
    } catch (err) {
      await screenshot(page, name);
      throw err;
    } finally {
      await page.context().close();
    }
  });
}

/** Logs in through the console's account form; lands on the find-user page. */
export async function logIn(page, { username, password }) {
  await page.goto('/console/login');
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.waitForURL('**/console/users');
}

/** Logs in through the console's access token form with the root token; lands on the find-user page. */
export async function logInWithRootToken(page) {
  await page.goto('/console/login');
  await page.getByLabel('Access token', { exact: true }).fill(rootToken);
  await page.getByRole('button', { name: 'Log in with token', exact: true }).click();
  await page.waitForURL('**/console/users');
}

/** The approval queue's row of one request (the row names the request). */
export function requestRow(page, uuid) {
  return page.getByRole('row').filter({ hasText: uuid });
}

/** The fields of the form holding `button`, as the browser would submit them (csrf included). */
export async function formOf(button) {
  return button.evaluate((el) => {
    const form = el.form ?? el.closest('form');
    const fields = [...new FormData(form, el).entries()].filter(([, v]) => typeof v === 'string');
    return { action: form.action, method: form.method, fields };
  });
}

/** Waits until `locator` (the first match) holds `expected`: a whole text, or a pattern. */
export async function assertText(locator, expected) {
  const first = locator.first();
  await first.waitFor();
  const deadline = Date.now() + 5_000;
  let text;
  for (;;) {
    text = (await first.innerText()).trim();
    const ok = typeof expected === 'string' ? text === expected : expected.test(text);
    if (ok) return;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`expected ${expected} in ${locator}, found ${JSON.stringify(text)}`);
}

/** The value shown for `field` in a table of fields (the row whose first cell names the field). */
export async function fieldValue(table, field) {
  const row = table.getByRole('row').filter({ has: table.page().getByRole('rowheader', { name: field, exact: true }) });
  const byHeader = row.getByRole('cell');
  if ((await row.count()) === 1 && (await byHeader.count()) >= 1) return (await byHeader.last().innerText()).trim();
  const cells = table.getByRole('row').filter({ has: table.page().getByRole('cell', { name: field, exact: true }) });
  assert.equal(await cells.count(), 1, `one row for ${field} in the table`);
  return (await cells.getByRole('cell').last().innerText()).trim();
}

/** The trimmed texts of the cells of `row` (for assertions that print what the row held). */
export async function cellTexts(row) {
  return (await row.getByRole('cell').allInnerTexts()).map((text) => text.trim());
}

/** Fails unless the page is no wider than the window: nothing to scroll sideways. */
export async function assertNoSidewaysScroll(page, what) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${what} (${page.url()}) is ${scrollWidth}px wide on a ${innerWidth}px screen`);
}

// The mail the vault sent: smtp-sink.mjs writes each message to MAIL_DIR as <time>-<n>.eml, its
// `X-Rcpt: <address>` lines first, then the message.

/** The messages in MAIL_DIR to `address` written after `after` (ms since the epoch), newest first. */
function mailsTo(address, after) {
  const wanted = address.toLowerCase();
  const found = [];
  for (const name of readdirSync(mailDir)) {
    const n = /^\d+-(\d+)\.eml$/.exec(name)?.[1];
    if (!n) continue;
    const file = join(mailDir, name);
    const { mtimeMs } = statSync(file);
    if (mtimeMs <= after) continue;
    const text = readFileSync(file, 'utf8');
    const rcpts = [...text.matchAll(/^X-Rcpt: (.*)\r?$/gm)].map((m) => m[1].trim().toLowerCase());
    if (rcpts.includes(wanted)) found.push({ n: Number(n), text });
  }
  return found.sort((a, b) => b.n - a.n).map((m) => m.text);
}

/**
 * Waits for a message to `address` written after `after` (ms since the epoch, e.g. `Date.now()`
 * taken before asking for it); answers the newest one's text (X-Rcpt lines, headers and body).
 */
export async function mailTo(address, { after = 0, timeoutMs = 10_000 } = {}) {
  assert.ok(mailDir, 'MAIL_DIR is not set: run tests/browser/run');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [newest] = mailsTo(address, after);
    if (newest !== undefined) return newest;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`no mail to ${address} within ${timeoutMs} ms`);
}

/** Fails if a message to `address` written after `after` arrives within `waitMs`. */
export async function noMailTo(address, after, waitMs) {
  assert.ok(mailDir, 'MAIL_DIR is not set: run tests/browser/run');
  const deadline = Date.now() + waitMs;
  for (;;) {
    const [newest] = mailsTo(address, after);
    assert.equal(newest, undefined, `a message went to ${address}:\n${newest}`);
    if (Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The body of a message (`mail` as mailTo answers it), decoded from the Content-Transfer-Encoding
 * of its headers (base64, quoted-printable; anything else as it is). Single-part messages only,
 * as the vault sends.
 */
export function mailBody(mail) {
  const split = /\r?\n\r?\n/.exec(mail);
  if (!split) return '';
  const headers = mail.slice(0, split.index).replace(/\r?\n[ \t]+/g, ' ');
  const body = mail.slice(split.index + split[0].length);
  const encoding = /^Content-Transfer-Encoding:\s*(\S+)/im.exec(headers)?.[1].toLowerCase();
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const bytes = body
      .replace(/[ \t]+(\r?\n)/g, '$1')
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

/**
 * The six-digit code in a portal login mail: in the decoded body, else in the raw body, else in
 * any base64 block of it.
 */
export function loginCode(mail) {
  const code = (text) => /\b(\d{6})\b/.exec(text)?.[1];
  const raw = mail.slice((/\r?\n\r?\n/.exec(mail)?.index ?? 0));
  const blocks = raw.match(/[A-Za-z0-9+/=\r\n]{8,}/g) ?? [];
  const found =
    code(mailBody(mail)) ??
    code(raw) ??
    blocks.map((b) => code(Buffer.from(b.replace(/\s+/g, ''), 'base64').toString('utf8'))).find(Boolean);
  return found ?? assert.fail(`no six-digit code in the mail:\n${mail}`);
}

// The portal's login: a code asked for by email address, then typed in.

/** The notice the portal shows once a code was asked for, whether or not the address is known. */
export const CODE_SENT = 'If we know this address, a code is on its way';

/**
 * Asks for a code at /portal/login for `identity` (an email address): answers when it was asked
 * for (ms since the epoch), for mailTo's `after`, once the page asks for the code.
 */
export async function askForCode(page, identity) {
  await page.goto('/portal/login');
  await page.getByRole('heading', { level: 1, name: 'Log in', exact: true }).waitFor();
  assert.equal(await page.getByLabel('Sign in with', { exact: true }).inputValue(), 'email');
  await page.getByLabel('Your email address or phone number', { exact: true }).fill(identity);
  const asked = Date.now();
  await page.getByRole('button', { name: 'Send me a code', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Enter your code', exact: true }).waitFor();
  await page.getByRole('status').filter({ hasText: CODE_SENT }).waitFor();
  return asked;
}

/** Types `code` on the code page and logs in; answers the response of the form's post. */
export async function enterCode(page, code) {
  await page.getByLabel('Code', { exact: true }).fill(code);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
    page.getByRole('button', { name: 'Log in', exact: true }).click(),
  ]);
  await page.waitForLoadState();
  return response;
}

/** Logs in at /portal/login with the code mailed to `email`; lands on "Your profile". */
export async function portalLogin(page, email) {
  const asked = await askForCode(page, email);
  await enterCode(page, loginCode(await mailTo(email, { after: asked })));
  await page.waitForURL('**/portal/profile');
  await page.getByRole('heading', { level: 1, name: 'Your profile', exact: true }).waitFor();
}

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core (WCAG 2.1 A and AA, and best practices) on the page as it is; fails with each
 * violation's rule id, impact and targets. Injected through the DevTools protocol, which the
 * console's Content-Security-Policy (script-src 'self') does not apply to.
 */
export async function assertAccessible(page, what) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  const report = violations.map((v) => `  ${v.id} (${v.impact}: ${v.help}): ${v.targets.join(', ')}`).join('\n');
  assert.equal(violations.length, 0, `axe-core on ${what} (${page.url()}):\n${report}`);
}
