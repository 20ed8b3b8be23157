// The console's main path (issue 18): a support account, invited by mail, activates, logs in,
// finds a user and sees the phone masked by its role; an administrator account approves a pending
// request, edits a policy (refused when invalid, saved when valid), simulates it and logs out.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import {
  activeAccount,
  api,
  assertText,
  fieldValue,
  invitationToken,
  launch,
  logIn,
  newPage,
  requestRow,
  steps,
  unique,
} from './lib.mjs';

describe('console scenario', () => {
  let browser;
  let page;
  const step = steps(() => page);
  const alice = {
    email: `${unique('alice-')}@example.com`,
    name: 'Alice Example',
    phone: `+44 7700 9${Math.floor(10000 + Math.random() * 89999)}`,
  };
  const role = unique('support-');
  const policyname = unique('support-read-');
  const support = { username: unique('sam'), password: 'sam has a long passphrase 42' };
  let admin;
  let userToken;
  let requestuuid;
  let policyid;
  let activationtoken;

  before(async () => {
    browser = await launch();
    userToken = (await api('UserCreate', { profile: alice })).token;
    await api('RoleCreate', { rolename: role });
    // Everything about a user but the phone, which the Deny hides (masked, the call allowed).
    const created = await api('PolicyCreate', {
      policyname,
      policy: [
        {
          Effect: 'Allow',
          Action: ['UserGet', 'UserSearch', 'UserListVersions', 'UserRequest*', 'BulkList*'],
          Resource: ['users.profile.*'],
        },
        { Effect: 'Deny', Action: ['*'], Resource: ['users.profile.phone'] },
      ],
    });
    policyid = created.policyid;
    await api('RoleLinkPolicy', { rolename: role, policyname });
    const simulated = await api('PolicySimulate', {
      rolename: role,
      operation: 'UserGet',
      targetmode: 'email',
      targetidentity: alice.email,
    });
    assert.deepEqual([simulated.decision, simulated.masked], ['allow', ['phone']]);
    // A change Alice asks for with her own access token waits in the approval queue.
    const { xtoken } = await api('XTokenCreateForUser', { mode: 'token', identity: userToken });
    ({ requestuuid } = await api(
      'UserUpdateRequest',
      { mode: 'token', identity: userToken, profile: { city: 'York' } },
      { token: xtoken },
    ));
    // The invitation goes by mail (tests/browser/run gives the vault the SMTP sink): its token is
    // read from the message, and is not in the answer. Without a mail server the answer holds it.
    const invited = await api('AccountCreate', {
      username: support.username,
      email: `${support.username}@example.com`,
      rolename: role,
    });
    activationtoken = await invitationToken(invited, `${support.username}@example.com`);
    admin = await activeAccount({ admin: true });
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
  });

  step('the invited account activates at /console/activate', async () => {
    await page.goto(`/console/activate?token=${encodeURIComponent(activationtoken)}`);
    await page.getByRole('heading', { level: 1, name: 'Activate your account', exact: true }).waitFor();
    await page.getByLabel('New password', { exact: true }).fill(support.password);
    await page.getByLabel('Repeat the password', { exact: true }).fill(support.password);
    await page.getByRole('button', { name: 'Activate', exact: true }).click();
    await page.waitForURL('**/console/login**');
    await assertText(page.getByRole('status'), 'Your account is active: log in.');
  });

  step('it logs in at /console/login and lands on "Find a user"', async () => {
    await logIn(page, support);
    await page.getByRole('heading', { level: 1, name: 'Find a user', exact: true }).waitFor();
    const nav = page.getByRole('navigation', { name: 'Console', exact: true });
    for (const link of ['Users', 'Requests', 'Tokens', 'Access', 'Accounts', 'Tenants', 'Keys', 'Statistics']) {
      await nav.getByRole('link', { name: link, exact: true }).waitFor();
    }
    await page.getByRole('button', { name: 'Log out', exact: true }).waitFor();
  });

  step('it finds the user by email: name and email in clear, the phone masked', async () => {
    await page.getByLabel('Find by', { exact: true }).selectOption('email');
    await page.getByLabel('Identity', { exact: true }).fill(alice.email);
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.waitForURL(`**/console/users/${userToken}`);
    await page.getByRole('heading', { level: 1, name: 'User profile', exact: true }).waitFor();
    const profile = page.getByRole('table', { name: 'Profile', exact: true });
    assert.equal(await fieldValue(profile, 'name'), alice.name);
    assert.equal(await fieldValue(profile, 'email'), alice.email);
    assert.equal(await fieldValue(profile, 'phone'), '***');
    const html = await page.content();
    assert.ok(!html.includes(alice.phone) && !html.includes(alice.phone.replaceAll(' ', '')), 'the phone leaked');
    for (const link of ['Versions', 'App data', 'Files', 'Consents', 'Sessions', 'Audit trail', 'Requests']) {
      await page.getByRole('main').getByRole('link', { name: link, exact: true }).waitFor();
    }
  });

  step('the support account logs out', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await page.waitForURL('**/console/login**');
  });

  step('an administrator account approves the request in /console/requests', async () => {
    await logIn(page, admin);
    await page.goto('/console/requests');
    await page.getByRole('heading', { level: 1, name: 'Approval queue', exact: true }).waitFor();
    const row = requestRow(page, requestuuid);
    await row.getByLabel('Reason', { exact: true }).fill('confirmed by phone');
    await row.getByRole('button', { name: 'Approve', exact: true }).click();
    await assertText(page.getByRole('status'), 'Request approved');
    const { request } = await api('UserRequestGet', { requestuuid });
    assert.equal(request.status, 'approved');
    const { profile } = await api('UserGet', { mode: 'token', identity: userToken });
    assert.equal(profile.city, 'York');
    assert.equal(await requestRow(page, requestuuid).count(), 0, 'the approved request is still listed');
  });

  step('it opens the policy from /console/access', async () => {
    await page.goto('/console/access');
    await page.getByRole('heading', { level: 1, name: 'Groups, roles and policies', exact: true }).waitFor();
    await page.locator(`a[href$="/console/access/policies/${policyid}"]`).first().click();
    await page.waitForURL(`**/console/access/policies/${policyid}`);
    await page.getByRole('heading', { level: 1, name: `Policy ${policyname}`, exact: true }).waitFor();
    const document = JSON.parse(await page.getByLabel('Policy document', { exact: true }).inputValue());
    assert.equal(JSON.stringify(document).includes('users.profile.phone'), true, JSON.stringify(document));
  });

  step('an invalid policy is refused with the vault\'s message', async () => {
    const editor = page.getByLabel('Policy document', { exact: true });
    await editor.fill('{"Effect": "Allow", "Action": [');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('alert').waitFor();
    await editor.fill(JSON.stringify({ Effect: 'Allow', Action: ['UserFly'], Resource: ['users.profile.*'] }));
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await assertText(page.getByRole('alert'), /UserFly/);
    const { policy } = await api('PolicyGet', { policyid });
    assert.ok(!JSON.stringify(policy).includes('UserFly'), 'the invalid policy was stored');
  });

  step('a valid policy is saved', async () => {
    const valid = [
      { Effect: 'Allow', Action: ['UserGet', 'UserRequest*'], Resource: ['users.profile.*'] },
      { Effect: 'Deny', Action: ['*'], Resource: ['users.profile.phone', 'users.profile.city'] },
    ];
    await page.getByLabel('Policy document', { exact: true }).fill(JSON.stringify(valid, null, 2));
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await assertText(page.getByRole('status'), 'Policy saved');
    const { policy } = await api('PolicyGet', { policyid });
    assert.ok(JSON.stringify(policy).includes('users.profile.city'), JSON.stringify(policy));
  });

  step('it simulates the policy: UserGet allowed with phone and city masked, UserDelete denied', async () => {
    const result = page.getByLabel('Simulation result', { exact: true });
    await simulate(page, { role, operation: 'UserGet', email: alice.email });
    await assertText(result, /allow/);
    await assertText(result, /phone/);
    await assertText(result, /city/);
    await simulate(page, { role, operation: 'UserDelete', email: alice.email });
    await assertText(result, /deny/);
  });

  step('it logs out, and /console/users then redirects to the login page', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await page.waitForURL('**/console/login**');
    await page.goto('/console/users');
    assert.match(new URL(page.url()).pathname, /^\/console\/login$/);
    await page.getByLabel('Username', { exact: true }).waitFor();
  });
});

async function simulate(page, { role, operation, email }) {
  await page.getByLabel('Role', { exact: true }).fill(role);
  const op = page.getByLabel('Operation', { exact: true });
  if ((await op.evaluate((el) => el.tagName)) === 'SELECT') await op.selectOption(operation);
  else await op.fill(operation);
  await page.getByLabel('Find by', { exact: true }).selectOption('email');
  await page.getByLabel('Identity', { exact: true }).fill(email);
  await page.getByRole('button', { name: 'Simulate', exact: true }).click();
}
