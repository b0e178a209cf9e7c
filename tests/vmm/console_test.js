// console_test.js — drives the dstack-vmm console in headless Chromium:
// deploy a VM through the create dialog (compose uploaded from a file,
// a port mapping, an environment encrypted in the browser), see it running
// with boot progress "done", read its log, take a screenshot, remove it.
// usage: node console_test.js <vmm-url> <compose-file> <screenshot.png> <host-port>
'use strict';
const { chromium } = require('playwright-core');

const [url, composePath, shot, hostPort] = process.argv.slice(2);
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
    await page.waitForFunction(() => document.querySelector('#f-compose').value.includes('bash_script'));
    ok(true, 'compose uploaded from a file');
    await page.fill('#f-memory', '512');
    await page.fill('#f-disk', '1');
    await page.fill('#f-ports', `tcp:${hostPort}:${+hostPort + 1000}`);
    await page.fill('#f-env', 'SECRET=swordfish\nMODE=web');
    await page.click('#f-submit');
    await page.waitForFunction(() => !document.querySelector('#create-dlg').open, null, { timeout: 15000 })
      .catch(() => {});
    const dlgMsg = await page.textContent('#dlg-msg');
    ok(!dlgMsg, 'create dialog closed without error' + (dlgMsg ? ': ' + dlgMsg : ''));
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
    await page.screenshot({ path: shot, fullPage: true });
    ok(true, 'screenshot saved to ' + shot);
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
