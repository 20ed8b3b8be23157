// The login page's two forms (the contract's fields), and a session opened with an access token.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { CSRF_REFUSED, launch, pageTest } from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** The form of the login page whose text holds `title`. */
function form(page, title) {
  return page.locator('form').filter({ hasText: title });
}

pageTest('the login page offers the account form and the access token form', () => browser, async (page) => {
  await page.goto('/console/login');
  const account = form(page, 'Log in with an account');
  for (const label of ['Tenant', 'Username', 'Password', 'One-time code']) {
    await account.getByLabel(label, { exact: true }).waitFor();
  }
  await account.getByRole('button', { name: 'Log in', exact: true }).waitFor();
  const token = form(page, 'Log in with an access token');
  for (const label of ['Access token']) {
    await token.getByLabel(label, { exact: true }).waitFor();
  }
  await token.getByRole('button', { name: 'Log in with token', exact: true }).waitFor();
});

pageTest('the root token opens a session, and logging out ends it', () => browser, async (page) => {
  await page.goto('/console/login');
  await page.getByLabel('Access token', { exact: true }).fill(process.env.BUNKER_ROOT_TOKEN);
  await page.getByRole('button', { name: 'Log in with token', exact: true }).click();
  await page.waitForURL('**/console/users');
  const cookie = (await page.context().cookies()).find((c) => c.name === 'bunker_console');
  assert.ok(cookie, 'no bunker_console cookie');
  assert.deepEqual([cookie.httpOnly, cookie.sameSite, cookie.path], [true, 'Strict', '/console']);
  assert.ok(!cookie.value.includes(process.env.BUNKER_ROOT_TOKEN), 'the cookie carries the root token');
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await page.waitForURL('**/console/login**');
  await page.goto('/console/users');
  assert.match(new URL(page.url()).pathname, /^\/console\/login$/);
});

pageTest('a wrong access token is refused on the login page', () => browser, async (page) => {
  await page.goto('/console/login');
  await page.getByLabel('Access token', { exact: true }).fill('00000000-0000-4000-8000-000000000000');
  await page.getByRole('button', { name: 'Log in with token', exact: true }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.notEqual((await alert.innerText()).trim(), CSRF_REFUSED, 'the form itself was refused');
  assert.match(new URL(page.url()).pathname, /^\/console\/login/);
});
