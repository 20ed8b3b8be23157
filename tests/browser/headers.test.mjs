// What every console answer carries (the contract's "Sessions" section), checked on the login
// page without a browser, and the redirect of a page asked for without a session.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vault } from './lib.mjs';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; connect-src 'self'";

test('the login page is served with the console\'s security headers', async () => {
  const response = await fetch(`${vault}/console/login`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /^text\/html/);
  assert.equal(response.headers.get('content-security-policy'), CSP);
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(response.headers.get('referrer-policy'), 'same-origin');
  assert.equal(response.headers.get('cache-control'), 'no-store');
  const html = await response.text();
  assert.match(html, /<html lang="en"/);
  assert.match(html, /<main[\s>]/);
  assert.match(html, /name="csrf"/);
});

test('a page asked for without a session redirects to the login page', async () => {
  for (const path of ['/console/users', '/console/requests', '/console/access']) {
    const response = await fetch(`${vault}${path}`, { redirect: 'manual' });
    assert.equal(response.status, 303, path);
    assert.equal(new URL(response.headers.get('location'), vault).pathname, '/console/login', path);
  }
});
