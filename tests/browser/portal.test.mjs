// The data subject's portal (/portal/, issue 19). A person logs in with a code mailed to them (read
// from the SMTP sink's folder), sees their profile, corrects their name (approved in the console),
// withdraws a consent and asks for their data to be erased, each a request that waits for
// approval; an administrator approves the erasure in the console; the person's session is then
// gone, and asking for a code again gets the same answer, no mail, and no way in. On a phone-sized
// screen another person's pages fit the width and pass axe-core; a post without the csrf field is
// refused; the answers carry the console's security headers and a strict session cookie; the
// report downloads as JSON and as HTML.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe } from 'node:test';
import {
  CODE_SENT,
  api,
  askForCode,
  assertAccessible,
  assertNoSidewaysScroll,
  assertText,
  cellTexts,
  enterCode,
  fieldValue,
  launch,
  logInWithRootToken,
  loginCode,
  mailTo,
  newPage,
  noMailTo,
  portalLogin,
  requestRow,
  steps,
  unique,
  vault,
} from './lib.mjs';

/** The nav of every logged-in portal page, and its links. */
const NAV = 'Your data';
const NAV_LINKS = ['Profile', 'Consents', 'App data', 'Files', 'Sessions', 'Shared records', 'Requests', 'Report'];

describe('portal scenario', () => {
  let browser;
  let page;
  let shown; // the page a failing step screenshots: the person's, or the administrator's
  const step = steps(() => shown);
  const person = { email: `${unique('subject')}@example.com`, name: 'Pat Subject' };
  const brief = unique('marketing');
  let erasureuuid;

  before(async () => {
    browser = await launch();
    await api('UserCreate', { profile: person });
    await api('LegalBasisCreate', {
      brief,
      basistype: 'consent',
      status: 'active',
      shortdesc: 'Marketing mail',
      usercontrol: true,
    });
    await api('AgreementAccept', { mode: 'email', identity: person.email, brief });
    page = await newPage(browser);
    shown = page;
  });

  after(async () => {
    await browser?.close();
  });

  let asked;
  let codeNotice;
  step('the person asks for a code at /portal/login', async () => {
    asked = await askForCode(page, person.email);
    codeNotice = await noticeText(page);
    await page.getByLabel('Code', { exact: true }).waitFor();
  });

  step('the mailed code logs them in: /portal/profile shows their email and name', async () => {
    await enterCode(page, loginCode(await mailTo(person.email, { after: asked })));
    await page.waitForURL('**/portal/profile');
    await page.getByRole('heading', { level: 1, name: 'Your profile', exact: true }).waitFor();
    const profile = page.getByRole('table', { name: 'Your profile', exact: true });
    assert.equal(await fieldValue(profile, 'email'), person.email);
    assert.equal(await fieldValue(profile, 'name'), person.name);
    for (const link of NAV_LINKS) await navLink(page, link).waitFor();
    await page.getByRole('button', { name: 'Log out', exact: true }).waitFor();
  });

  step('they correct their name; an administrator approves; their profile shows it', async () => {
    await page.getByLabel('name', { exact: true }).fill('Pat Corrected');
    await page.getByRole('button', { name: 'Ask for this change', exact: true }).click();
    await page.waitForURL((url) => url.pathname === '/portal/requests');
    await notice(page, 'Your change is waiting for approval.');
    const row = tableRows(page, 'Your requests').filter({ hasText: 'Change my profile' });
    assert.equal(await row.count(), 1, 'one "Change my profile" row');
    assert.ok((await cellTexts(row)).includes('open'), 'the change is open');
    const rows = await userRequests(person.email);
    const change = rows.find((r) => kind(r) === 'change-profile' && r.status === 'open');
    assert.ok(change, `an open change-profile request: ${JSON.stringify(rows)}`);
    const admin = await newPage(browser);
    shown = admin;
    try {
      await logInWithRootToken(admin);
      await admin.goto('/console/requests');
      const pending = requestRow(admin, change.requestuuid);
      await pending.getByLabel('Reason', { exact: true }).fill('a correction asked for in the portal');
      await pending.getByRole('button', { name: 'Approve', exact: true }).click();
      await assertText(admin.getByRole('status'), 'Request approved');
      shown = page;
    } finally {
      if (shown === page) await admin.context().close();
    }
    await navLink(page, 'Profile').click();
    await page.waitForURL('**/portal/profile');
    const profile = page.getByRole('table', { name: 'Your profile', exact: true });
    assert.equal(await fieldValue(profile, 'name'), 'Pat Corrected');
  });

  step('they withdraw their consent: the withdrawal waits for approval', async () => {
    await navLink(page, 'Consents').click();
    await page.waitForURL('**/portal/consents');
    await page.getByRole('heading', { level: 1, name: 'Your consents', exact: true }).waitFor();
    const withdraw = page.getByRole('button', { name: `Withdraw consent ${brief}`, exact: true });
    const consent = tableRows(page, 'Your consents').filter({ has: withdraw });
    assert.equal(await consent.count(), 1, `one row with "Withdraw consent ${brief}"`);
    const status = await cellTexts(consent);
    assert.ok(status.includes('active'), `the consent's row: ${JSON.stringify(status)}`);
    await withdraw.click();
    await page.waitForURL((url) => url.pathname === '/portal/requests');
    await page.getByRole('heading', { level: 1, name: 'Your requests', exact: true }).waitFor();
    await notice(page, 'Your withdrawal is waiting for approval.');
    const row = tableRows(page, 'Your requests').filter({ hasText: brief });
    assert.equal(await row.count(), 1, `one request row naming ${brief}`);
    const cells = await cellTexts(row);
    assert.ok(cells.includes('open'), `the withdrawal's row: ${JSON.stringify(cells)}`);
    const rows = await userRequests(person.email);
    const open = rows.filter(
      (r) => kind(r) === 'agreement-withdraw' && r.status === 'open' && (r.brief ?? brief) === brief,
    );
    assert.equal(open.length, 1, `one open agreement-withdraw request: ${JSON.stringify(rows)}`);
  });

  step('they ask for their data to be erased: the erasure waits for approval', async () => {
    await navLink(page, 'Profile').click();
    await page.waitForURL('**/portal/profile');
    await page.getByLabel('I understand that all my data will be erased once approved', { exact: true }).check();
    await page.getByRole('button', { name: 'Ask to erase my data', exact: true }).click();
    await page.waitForURL((url) => url.pathname === '/portal/requests');
    await notice(page, 'Your request to erase your data is waiting for approval.');
    const row = tableRows(page, 'Your requests').filter({ hasText: 'Erase my data' });
    assert.equal(await row.count(), 1, 'one "Erase my data" row');
    const cells = await cellTexts(row);
    assert.ok(cells.includes('open'), `the erasure's row: ${JSON.stringify(cells)}`);
    const rows = await userRequests(person.email);
    const open = rows.filter((r) => kind(r) === 'forget-me' && r.status === 'open');
    assert.equal(open.length, 1, `one open forget-me request: ${JSON.stringify(rows)}`);
    erasureuuid = open[0].requestuuid;
    assert.ok(erasureuuid, `no requestuuid: ${JSON.stringify(open[0])}`);
  });

  step('an administrator approves the erasure in /console/requests', async () => {
    const admin = await newPage(browser);
    shown = admin;
    try {
      await logInWithRootToken(admin);
      await admin.goto('/console/requests');
      await admin.getByRole('heading', { level: 1, name: 'Approval queue', exact: true }).waitFor();
      const row = requestRow(admin, erasureuuid);
      await row.getByLabel('Reason', { exact: true }).fill('asked for in the portal');
      await row.getByRole('button', { name: 'Approve', exact: true }).click();
      await assertText(admin.getByRole('status'), 'Request approved');
      // The erasure takes the person's requests with it (they hold what was asked).
      const request = await api('UserRequestGet', { requestuuid: erasureuuid }, { expect: 'error' });
      assert.equal(request.message, 'The user request was not found', JSON.stringify(request));
      const gone = await api('UserGet', { mode: 'email', identity: person.email }, { expect: 'error' });
      assert.equal(gone.status, 'error', `the user is still there: ${JSON.stringify(gone)}`);
      shown = page;
    } finally {
      // Kept open (for the screenshot) only until the step is over.
      if (shown === page) await admin.context().close();
    }
  });

  step('the person\'s session went with their data: /portal/profile redirects to /portal/login', async () => {
    shown = page;
    await page.goto('/portal/profile');
    assert.equal(new URL(page.url()).pathname, '/portal/login');
    await page.getByRole('heading', { level: 1, name: 'Log in', exact: true }).waitFor();
  });

  step('asking for a code again gets the same answer, but no mail, and no code opens a session', async () => {
    const again = await askForCode(page, person.email);
    assert.equal(await noticeText(page), codeNotice, 'the answer differs from the one a known address got');
    await noMailTo(person.email, again, 3_000);
    const response = await enterCode(page, '000000');
    assert.equal(response.status(), 403);
    await assertText(page.getByRole('alert'), /The code is not valid or has expired/);
    assert.notEqual(new URL(page.url()).pathname, '/portal/profile');
    await page.goto('/portal/profile');
    assert.equal(new URL(page.url()).pathname, '/portal/login', 'a session was opened');
  });
});

describe('portal on a phone-sized screen', () => {
  let browser;
  let page;
  const step = steps(() => page, { independent: true });
  const person = { email: `${unique('subject')}@example.com`, name: 'Robin Phone' };
  const brief = unique('newsletter');
  let loggedIn;

  before(async () => {
    browser = await launch();
    const { token } = await api('UserCreate', { profile: person });
    await api('LegalBasisCreate', {
      brief,
      basistype: 'consent',
      status: 'active',
      shortdesc: 'Newsletter',
      usercontrol: true,
    });
    await api('AgreementAccept', { mode: 'email', identity: person.email, brief });
    // A change waiting for approval, so that /portal/requests has a row.
    const { xtoken } = await api('XTokenCreateForUser', { mode: 'token', identity: token });
    await api('UserUpdateRequest', { mode: 'token', identity: token, profile: { city: 'Leeds' } }, { token: xtoken });
    page = await newPage(browser, { viewport: { width: 390, height: 844 } });
  });

  after(async () => {
    await browser?.close();
  });

  /** Logs the person in once; the later steps wait for it (and fail with it). */
  function logIn() {
    loggedIn ??= portalLogin(page, person.email);
    return loggedIn;
  }

  step('/portal/login and the code page fit the width, and axe-core finds nothing', async () => {
    await page.goto('/portal/login');
    await page.getByRole('heading', { level: 1, name: 'Log in', exact: true }).waitFor();
    await assertNoSidewaysScroll(page, 'the login page');
    await assertAccessible(page, 'the login page');
    const stranger = `${unique('nobody')}@example.com`;
    await page.getByLabel('Your email address or phone number', { exact: true }).fill(stranger);
    await page.getByRole('button', { name: 'Send me a code', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Enter your code', exact: true }).waitFor();
    await assertNoSidewaysScroll(page, 'the code page');
    await assertAccessible(page, 'the code page');
  });

  step('the person logs in with the mailed code', async () => {
    await logIn();
  });

  for (const [path, heading] of [
    ['/portal/profile', 'Your profile'],
    ['/portal/consents', 'Your consents'],
    ['/portal/requests', 'Your requests'],
  ]) {
    step(`${path} fits the width, and axe-core finds nothing`, async () => {
      await logIn();
      await page.goto(path);
      await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
      await assertNoSidewaysScroll(page, path);
      await assertAccessible(page, path);
    });
  }

  step('a post to /portal/erase without the csrf field is answered 403 and asks for nothing', async () => {
    await logIn();
    await page.goto('/portal/profile');
    const answer = await page.evaluate(async () => {
      // Form-urlencoded (URLSearchParams sets the type), the box ticked, no csrf field.
      const body = new URLSearchParams({ confirm: 'on' });
      const response = await fetch('/portal/erase', { method: 'POST', body });
      return { status: response.status, url: response.url };
    });
    assert.equal(answer.status, 403, JSON.stringify(answer));
    const rows = await userRequests(person.email);
    const erasures = rows.filter((r) => kind(r) === 'forget-me');
    assert.equal(erasures.length, 0, `a forget-me request: ${JSON.stringify(rows)}`);
  });

  step('the portal\'s answers carry the security headers, and its cookie is strict', async () => {
    const response = await fetch(`${vault}/portal/login`);
    assert.equal(response.status, 200);
    assert.ok(
      response.headers.get('content-security-policy')?.startsWith("default-src 'none'"),
      `content-security-policy: ${response.headers.get('content-security-policy')}`,
    );
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
    assert.equal(response.headers.get('cache-control'), 'no-store');
    await logIn();
    const cookies = await page.context().cookies();
    const cookie = cookies.find((c) => c.name === 'bunker_portal');
    assert.ok(cookie, `no bunker_portal cookie: ${cookies.map((c) => c.name).join(', ')}`);
    assert.deepEqual([cookie.httpOnly, cookie.sameSite, cookie.path], [true, 'Strict', '/portal']);
  });

  step('the report downloads as JSON holding the email, and as HTML', async () => {
    await logIn();
    await page.goto('/portal/report');
    await page.getByRole('heading', { level: 1, name: 'Your report', exact: true }).waitFor();
    const json = await download(page, 'Download as JSON');
    let report;
    try {
      report = JSON.parse(json);
    } catch (err) {
      assert.fail(`the JSON report does not parse (${err.message}): ${json.slice(0, 500)}`);
    }
    assert.ok(JSON.stringify(report).includes(person.email), `no email in the JSON report: ${json.slice(0, 500)}`);
    const html = await download(page, 'Download as HTML');
    assert.match(html, /<html/i, `the HTML report: ${html.slice(0, 500)}`);
  });
});

/** The link named `name` in the nav of the person's pages. */
function navLink(page, name) {
  return page.getByRole('navigation', { name: NAV, exact: true }).getByRole('link', { name, exact: true });
}

/** Waits for the page's role=status notice `text`. */
async function notice(page, text) {
  await assertText(page.getByRole('status').filter({ hasText: text }), text);
}

/** The rows of the table captioned `caption`. */
function tableRows(page, caption) {
  return page.getByRole('table', { name: caption, exact: true }).getByRole('row');
}

/** The text of the code page's notice (the same whether or not the address is known). */
async function noticeText(page) {
  const status = page.getByRole('status').filter({ hasText: CODE_SENT });
  assert.equal(await status.count(), 1, 'one notice that a code is on its way');
  return (await status.innerText()).trim();
}

/** A user's requests, as UserRequestListUserRequests answers them (as root). */
async function userRequests(email) {
  const answer = await api('UserRequestListUserRequests', { mode: 'email', identity: email });
  return answer.rows ?? [];
}

/** What a request asks for (`forget-me`, `agreement-withdraw`, ...). */
function kind(request) {
  return request.requesttype ?? request.action;
}

/** Clicks the link named `name` and answers the text of the file it downloads. */
async function download(page, name) {
  const [file] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name, exact: true }).click(),
  ]);
  const failure = await file.failure();
  assert.equal(failure, null, `the download of "${name}" failed: ${failure}`);
  return readFileSync(await file.path(), 'utf8');
}
