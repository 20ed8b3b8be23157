// A locked-out account: five wrong passwords, then the right one is still refused, with the
// message AccountLogin answers shown verbatim.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { activeAccount, api, launch, pageTest } from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function attempt(page, username, password) {
  await page.goto('/console/login');
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.waitForLoadState();
  const alert = page.getByRole('alert').first();
  await alert.waitFor();
  return (await alert.innerText()).trim();
}

pageTest('five wrong passwords lock the account: the right one is then refused', () => browser, async (page) => {
  const account = await activeAccount({ admin: true });
  for (let n = 1; n <= 5; n++) {
    const shown = await attempt(page, account.username, `wrong password number ${n}`);
    assert.equal(shown, 'Invalid username or password', `attempt ${n}`);
    assert.match(new URL(page.url()).pathname, /^\/console\/login/);
  }
  // The vault's own answer to the right password now (a locked account takes no attempt).
  const answer = await api('AccountLogin', account, { token: null, expect: 'error' });
  assert.equal(answer.status, 'error', 'the API let a locked account log in');
  const shown = await attempt(page, account.username, account.password);
  assert.equal(shown, answer.message);
  assert.match(new URL(page.url()).pathname, /^\/console\/login/);
  await page.goto('/console/users');
  assert.match(new URL(page.url()).pathname, /^\/console\/login$/, 'a session was opened');
});

pageTest('a wrong password is answered on the login page', () => browser, async (page) => {
  assert.equal(await attempt(page, 'nobody-here', 'not the password at all'), 'Invalid username or password');
});
