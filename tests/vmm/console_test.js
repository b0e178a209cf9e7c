// console_test.js — drives the dstack-vmm console in headless Chromium:
// deploy a VM through the create dialog (compose uploaded from a file,
// a port mapping, an environment encrypted in the browser), see it running
// with boot progress "done", read its log, upgrade its env (decrypted here
// with the stand-in KMS key), take a screenshot, remove it.
// usage: node console_test.js <vmm-url> <compose-file> <screenshot.png> <host-port> <run-dir> <kms-x25519-secret-hex>
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const { chromium } = require('playwright-core');

const [url, composePath, shot, hostPort, runDir, kmsSecretHex] = process.argv.slice(2);

// Decrypt an .encrypted-env (eph_pub 32 || iv 12 || AES-256-GCM ct || tag 16,
// key = raw X25519 shared secret) with the stand-in KMS's private key.
function decryptEnv(blob) {
  const priv = crypto.createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), Buffer.from(kmsSecretHex, 'hex')]),
    format: 'der', type: 'pkcs8',
  });
  const pub = crypto.createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), blob.subarray(0, 32)]),
    format: 'der', type: 'spki',
  });
  const key = crypto.diffieHellman({ privateKey: priv, publicKey: pub });
  const d = crypto.createDecipheriv('aes-256-gcm', key, blob.subarray(32, 44));
  d.setAuthTag(blob.subarray(blob.length - 16));
  return Buffer.concat([d.update(blob.subarray(44, blob.length - 16)), d.final()]).toString();
}
function vmEnvFile(id) {
  return `${runDir}/${id}/shared/.encrypted-env`;
}
let n = 0;
let failed = 0;
function ok(cond, msg) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? '' : 'not '}ok ${n} - ${String(msg).split('\n')[0]}`);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    page.on('dialog', (d) => d.accept());
    await page.goto(url);
    ok((await page.title()) === 'dstack-vmm', 'console page title');
    await page.click('#create-btn');
    await page.waitForSelector('#f-image option', { state: 'attached' });
    ok((await page.inputValue('#f-image')) === 'dstack-0.5.3', 'image list filled from ListImages');
    await page.fill('#f-name', 'webui');
    await page.setInputFiles('#f-compose-file', composePath);
    const composeText = fs.readFileSync(composePath, 'utf8');
    const uploaded = await page.waitForFunction((want) => document.querySelector('#f-compose').value === want,
      composeText, { timeout: 5000 }).then(() => true, () => false);
    ok(uploaded, 'compose uploaded from a file (the text area holds the file verbatim)');
    await page.fill('#f-memory', '512');
    await page.fill('#f-disk', '1');
    await page.fill('#f-ports', `tcp:${hostPort}:${+hostPort + 1000}`);
    await page.fill('#f-env', 'SECRET=swordfish\nMODE=web');
    await page.click('#f-submit');
    await page.waitForFunction(() => !document.querySelector('#create-dlg').open, null, { timeout: 15000 })
      .catch(() => {});
    const dlgMsg = await page.textContent('#dlg-msg');
    ok(!dlgMsg, 'create dialog closed without error' + (dlgMsg ? ': ' + dlgMsg : ''));
    const path = await page.evaluate(() => DstackX25519.lastPath());
    ok(path === 'webcrypto', `env encrypted with WebCrypto X25519 (path: ${path})`);
    // The fallback ladder for browsers without WebCrypto X25519: RFC 7748 §5.2, first vector.
    const rfc = await page.evaluate(() => DstackX25519.hex(DstackX25519.ladder(
      DstackX25519.unhex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
      DstackX25519.unhex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'))));
    ok(rfc === 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
      'fallback X25519 ladder matches the RFC 7748 vector');
    const row = 'tr[data-name="webui"]';
    const running = await page.waitForFunction((sel) => {
      const r = document.querySelector(sel);
      return r && r.querySelector('.vm-status').textContent.startsWith('running') &&
        r.querySelector('.vm-progress').textContent === 'done';
    }, row, { timeout: 30000 }).then(() => true, () => false);
    ok(running, 'VM shows status running and boot progress done');
    await page.click(`${row} .btn-logs`);
    await page.selectOption('#logs-ch', 'stdout');
    const logs = await page.waitForFunction(() => document.querySelector('#logs-text').textContent
      .includes('hello from webui'), null, { timeout: 10000 }).then(() => true, () => false);
    ok(logs, 'log panel shows the app output');
    // Upgrade: a new env through the same dialog, encrypted in the browser again.
    const vmId = await page.getAttribute(row, 'data-id');
    const before = vmId && fs.existsSync(vmEnvFile(vmId)) ? fs.readFileSync(vmEnvFile(vmId)) : Buffer.alloc(0);
    await page.click(`${row} .btn-upgrade`);
    ok((await page.textContent('#dlg-title')) === 'Upgrade webui', 'Upgrade opens the dialog for this VM');
    await page.fill('#f-env', 'SECRET=rotated\nMODE=upgraded');
    await page.click('#f-submit');
    await page.waitForFunction(() => !document.querySelector('#create-dlg').open, null, { timeout: 15000 })
      .catch(() => {});
    const upMsg = await page.textContent('#dlg-msg');
    ok(!upMsg, 'upgrade dialog closed without error' + (upMsg ? ': ' + upMsg : ''));
    let upgraded = '';
    for (let i = 0; i < 50 && !upgraded.includes('rotated'); i++) {
      try {
        const now = fs.readFileSync(vmEnvFile(vmId));
        if (!now.equals(before)) upgraded = decryptEnv(now);
      } catch (e) { /* not written yet */ }
      if (!upgraded.includes('rotated')) await new Promise((r) => setTimeout(r, 100));
    }
    ok(/"key":"SECRET","value":"rotated"/.test(upgraded),
      'UpgradeApp stored the new env, encrypted in the browser to the KMS key (SECRET=rotated)');
    try { fs.unlinkSync(shot); } catch (e) { /* not there yet */ }
    await page.screenshot({ path: shot, fullPage: true });
    const png = fs.existsSync(shot) ? fs.readFileSync(shot) : Buffer.alloc(0);
    ok(png.length > 10000 && png.subarray(1, 4).toString() === 'PNG', `screenshot saved to ${shot} (${png.length} bytes)`);
    await page.click(`${row} .btn-remove`);
    const gone = await page.waitForFunction((sel) => !document.querySelector(sel), row, { timeout: 20000 })
      .then(() => true, () => false);
    ok(gone, 'VM removed from the list');
  } catch (e) {
    ok(false, 'unexpected error: ' + e.message);
  } finally {
    await browser.close();
  }
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
})();
