// Forged posts: while an administrator is logged in, a console form without the right `csrf` field,
// with a foreign Origin, or auto-submitted from a page of another origin, does nothing.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe } from 'node:test';
import { CSRF_REFUSED, activeAccount, api, formOf, launch, logIn, newPage, requestRow, steps, unique } from './lib.mjs';

describe('CSRF', () => {
  let browser;
  let page;
  let attacker;
  let userToken;
  let requestuuid;
  let approve;
  let admin;
  const step = steps(() => page);

  before(async () => {
    browser = await launch();
    userToken = (await api('UserCreate', { profile: { email: `${unique('csrf-')}@example.com`, name: 'Carol' } }))
      .token;
    const { xtoken } = await api('XTokenCreateForUser', { mode: 'token', identity: userToken });
    ({ requestuuid } = await api(
      'UserUpdateRequest',
      { mode: 'token', identity: userToken, profile: { name: 'Mallory' } },
      { token: xtoken },
    ));
    attacker = await serveAttacker();
    admin = await activeAccount({ admin: true });
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    attacker?.close();
  });

  async function stillOpen() {
    const { request } = await api('UserRequestGet', { requestuuid });
    assert.equal(request.status, 'open', 'the forged post approved the request');
    const { profile } = await api('UserGet', { mode: 'token', identity: userToken });
    assert.equal(profile.name, 'Carol');
  }

  async function openQueue() {
    await page.goto('/console/requests');
    return requestRow(page, requestuuid).getByRole('button', { name: 'Approve', exact: true });
  }

  step('the approval form carries a csrf field', async () => {
    await logIn(page, admin);
    approve = await formOf(await openQueue());
    assert.equal(approve.method, 'post');
    const csrf = approve.fields.filter(([name]) => name === 'csrf');
    assert.equal(csrf.length, 1, JSON.stringify(approve.fields));
    assert.ok(csrf[0][1].length >= 16, 'a guessable csrf value');
  });

  step('a form submitted without its csrf field is answered 403', async () => {
    const button = await openQueue();
    await button.evaluate((el) => el.form.querySelector('input[name="csrf"]').remove());
    const response = await submitting(button);
    assert.equal(response.status(), 403);
    await page.getByRole('alert').filter({ hasText: CSRF_REFUSED }).waitFor();
    await stillOpen();
  });

  step('a form submitted with a wrong csrf value is answered 403', async () => {
    const button = await openQueue();
    await button.evaluate((el) => {
      const field = el.form.querySelector('input[name="csrf"]');
      field.value = field.value.split('').reverse().join('');
    });
    const response = await submitting(button);
    assert.equal(response.status(), 403);
    await page.getByRole('alert').filter({ hasText: CSRF_REFUSED }).waitFor();
    await stillOpen();
  });

  step('the right csrf value with a foreign Origin is answered 403', async () => {
    const response = await page.request.post(approve.action, {
      form: Object.fromEntries(approve.fields),
      headers: { origin: 'https://attacker.example' },
      maxRedirects: 0,
    });
    assert.equal(response.status(), 403);
    assert.ok((await response.text()).includes(CSRF_REFUSED));
    await stillOpen();
  });

  step('a log-out post without csrf is answered 403 and the session goes on', async () => {
    const response = await page.request.post('/console/logout', { form: {}, maxRedirects: 0 });
    assert.equal(response.status(), 403);
    await page.goto('/console/users');
    assert.match(new URL(page.url()).pathname, /^\/console\/users$/);
  });

  // 127.0.0.1 on another port: same site (the SameSite=Strict cookie goes along), another origin.
  // localhost: another site (the cookie stays behind). Neither may approve.
  for (const host of ['127.0.0.1', 'localhost']) {
    step(`a form auto-submitted from http://${host}:<another port> does not approve`, async () => {
      const forged = approve.fields.filter(([name]) => name !== 'csrf');
      const target = `http://${host}:${attacker.port}/?${new URLSearchParams({
        action: approve.action,
        fields: JSON.stringify(forged),
      })}`;
      const answered = page.waitForResponse((r) => r.url().startsWith(new URL(approve.action).origin) &&
        r.request().method() === 'POST');
      await page.goto(target);
      const response = await answered;
      await page.waitForLoadState();
      assert.ok([303, 403].includes(response.status()), `answered ${response.status()}`);
      await stillOpen();
      // The administrator's session is intact.
      await page.goto('/console/users');
      assert.match(new URL(page.url()).pathname, /^\/console\/users$/);
    });
  }
});

/** Clicks `button` and answers the response of the navigation the form makes. */
async function submitting(button) {
  const page = button.page();
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
    button.click(),
  ]);
  await page.waitForLoadState();
  return response;
}

/**
 * A page on another origin that builds a form from its query (action, fields) and submits it
 * as soon as it loads, as a forged link would.
 */
async function serveAttacker() {
  const server = createServer((req, res) => {
    if (req.url.startsWith('/forge.js')) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(`const q = new URLSearchParams(location.search);
const form = document.createElement('form');
form.method = 'post';
form.action = q.get('action');
for (const [name, value] of JSON.parse(q.get('fields'))) {
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = name;
  input.value = value;
  form.append(input);
}
document.body.append(form);
form.submit();`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><html lang="en"><title>Win a prize</title><body><script src="/forge.js"></script></body></html>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, close: () => server.close() };
}
