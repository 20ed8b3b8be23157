// Helpers of the console's browser tests: the vault's API (with the root token), Chromium, a
// screenshot of the page when a step fails, and axe-core.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';

/** The vault's address and root token, from tests/browser/run. */
export const vault = process.env.BUNKER_URL ?? assert.fail('BUNKER_URL is not set: run tests/browser/run');
const rootToken = process.env.BUNKER_ROOT_TOKEN ?? assert.fail('BUNKER_ROOT_TOKEN is not set');
const artifacts = process.env.BROWSER_ARTIFACTS ?? 'browser-artifacts';

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
  const created = await api('AccountCreate', { username, email: `${username}@example.com`, ...fields });
  await api('AccountActivate', { token: created.activationtoken, password }, { token: null });
  return { username, password, accountid: created.accountid };
}

/** Chromium from the Debian package, headless. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

/** A fresh browser context (its own cookies) and page, with short timeouts. */
export async function newPage(browser) {
  const context = await browser.newContext({ baseURL: vault });
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
