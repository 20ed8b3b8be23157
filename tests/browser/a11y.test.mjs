// axe-core on the pages a support agent lives in: the login page, "Find a user", a profile, the
// approval queue and a policy. Fails on any violation, naming its rule and elements.
import { after, before, describe } from 'node:test';
import { activeAccount, api, assertAccessible, launch, logIn, newPage, steps, unique } from './lib.mjs';

describe('accessibility (axe-core)', () => {
  let browser;
  let page;
  let account;
  let userToken;
  let policyid;
  const step = steps(() => page, { independent: true });

  before(async () => {
    browser = await launch();
    userToken = (
      await api('UserCreate', {
        profile: { email: `${unique('axe-')}@example.com`, name: 'Dana Axe', phone: '+44 7700 900456' },
      })
    ).token;
    const { xtoken } = await api('XTokenCreateForUser', { mode: 'token', identity: userToken });
    await api('UserUpdateRequest', { mode: 'token', identity: userToken, profile: { city: 'Hull' } }, { token: xtoken });
    ({ policyid } = await api('PolicyCreate', {
      policyname: unique('axe-policy-'),
      policy: { Effect: 'Allow', Action: ['UserGet'], Resource: ['users.profile.name'] },
    }));
    account = await activeAccount({ admin: true });
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
  });

  step('the login page', async () => {
    await page.goto('/console/login');
    await page.getByRole('heading', { level: 1 }).waitFor();
    await assertAccessible(page, 'the login page');
  });

  step('the find-user page', async () => {
    await logIn(page, account);
    await assertAccessible(page, 'the find-user page');
  });

  step('the profile page', async () => {
    await page.goto(`/console/users/${userToken}`);
    await page.getByRole('heading', { level: 1, name: 'User profile', exact: true }).waitFor();
    await assertAccessible(page, 'the profile page');
  });

  step('the approval queue', async () => {
    await page.goto('/console/requests');
    await page.getByRole('button', { name: 'Approve', exact: true }).first().waitFor();
    await assertAccessible(page, 'the approval queue');
  });

  step('the policy page', async () => {
    await page.goto(`/console/access/policies/${policyid}`);
    await page.getByLabel('Policy document', { exact: true }).waitFor();
    await assertAccessible(page, 'the policy page');
  });
});
