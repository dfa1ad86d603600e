// The Electron shell's security decisions (main/app/security.ts has no electron import).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppUrl, rendererFileFor, senderAllowed, permissionAllowed, externalUrlAllowed, APP_CONTENT_SECURITY_POLICY } from '../../main/app/security.js';

test('only app://bootbench is our renderer', () => {
  assert.equal(isAppUrl('app://bootbench/index.html'), true);
  assert.equal(isAppUrl('app://bootbench/assets/x.js'), true);
  for (const url of [
    'app://evil/index.html',
    'https://bootbench/',
    'file:///index.html',
    'app://user:pw@bootbench/',
    'about:blank',
    '',
    undefined,
    'not a url',
  ]) {
    assert.equal(isAppUrl(url), false, String(url));
  }
});

test("IPC is handled only from our window's top frame on our origin", () => {
  const ok = { frameUrl: 'app://bootbench/index.html', isMainFrame: true, isOurWindow: true };
  assert.equal(senderAllowed(ok), true);
  assert.equal(senderAllowed({ ...ok, isMainFrame: false }), false, 'an iframe');
  assert.equal(senderAllowed({ ...ok, isOurWindow: false }), false, 'another webContents');
  assert.equal(senderAllowed({ ...ok, frameUrl: 'https://example.com/' }), false, 'navigated away');
  assert.equal(senderAllowed({ ...ok, frameUrl: undefined }), false, 'frame gone');
});

test('app:// URLs map into the renderer build and never out of it', () => {
  const dir = '/opt/bootbench/dist/renderer';
  assert.equal(rendererFileFor('app://bootbench/', dir), `${dir}/index.html`);
  assert.equal(rendererFileFor('app://bootbench/assets/index-1.js', dir), `${dir}/assets/index-1.js`);
  // URL parsing folds %2e%2e into the path first: it stays inside the build folder.
  assert.equal(rendererFileFor('app://bootbench/%2e%2e/%2e%2e/etc/passwd', dir), `${dir}/etc/passwd`);
  for (const url of ['app://bootbench/..%2f..%2fetc/passwd', 'app://bootbench/a%5c..%5c..%5cx', 'app://bootbench/%00', 'app://other/index.html']) {
    assert.equal(rendererFileFor(url, dir), undefined, url);
  }
});

test('the app CSP allows only our own scripts and no network', () => {
  assert.match(APP_CONTENT_SECURITY_POLICY, /script-src 'self';/);
  assert.match(APP_CONTENT_SECURITY_POLICY, /connect-src 'none'/);
  assert.doesNotMatch(APP_CONTENT_SECURITY_POLICY, /unsafe/);
});

test('every session permission is refused, whatever its name', () => {
  for (const permission of [
    'media',
    'geolocation',
    'notifications',
    'clipboard-read',
    'hid',
    'serial',
    'usb',
    'openExternal',
    'fileSystem',
    'some-future-permission',
  ]) {
    assert.equal(permissionAllowed(permission), false, permission);
  }
});

test('only plain https links may go to the browser (shell.openExternal)', () => {
  assert.equal(externalUrlAllowed('https://github.com/bootbench/bootbench#readme'), true);
  for (const url of [
    'http://example.com/',
    'file:///etc/passwd',
    'smb://server/share',
    'ms-msdt:/id PCWDiagnostic',
    'javascript:alert(1)',
    'app://bootbench/index.html',
    'https://user:pw@example.com/',
    'not a url',
    '',
  ]) {
    assert.equal(externalUrlAllowed(url), false, url);
  }
});
