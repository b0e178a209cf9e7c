// dashboard_test.js — the gateway admin dashboard in headless Chromium:
// the page opened with ?token= lists this node, both registered CVMs (ids,
// WireGuard IPs, "never" for a CVM that has not handshaked) and the live
// connection the shell script holds open through the proxy; an identity
// that contains markup is shown as text, never parsed; without the token
// neither the page nor its API answers. A screenshot is kept (checked: a PNG
// of a real page size).
// usage: node dashboard_test.js <admin-url> <token> <screenshot.png>
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core');

const [base, token, shot] = process.argv.slice(2);
let n = 0;
let failed = 0;
function ok(cond, msg) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? '' : 'not '}ok ${n} - ${String(msg).split('\n')[0]}`);
}

async function cellAfter(page, label) {
  return page.evaluate((l) => {
    for (const tr of document.querySelectorAll('#node tr')) {
      const td = tr.querySelectorAll('td');
      if (td.length === 2 && td[0].textContent === l) return td[1].textContent;
    }
    return null;
  }, label);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${base}/?token=${encodeURIComponent(token)}`);
    ok((await page.title()) === 'dstack-gateway', 'dashboard page title');
    await page.waitForFunction(() => document.querySelectorAll('#hosts tr').length >= 2, null,
      { timeout: 10000 }).catch(() => {});
    const rows = await page.$$eval('#hosts tr', (trs) => trs.map((tr) =>
      [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    ok(rows.length === 2, `two registered CVMs listed (${rows.length})`);
    const byInst = Object.fromEntries(rows.map((r) => [r[0], r]));
    const a = byInst['1111111111111111111111111111111111111111'];
    const b = byInst['2222222222222222222222222222222222222222'];
    ok(a && a[1] === 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' && /^10\.77\.0\.\d+$/.test(a[2]),
      `first CVM: app id and WireGuard IP (${a && a.join(' | ')})`);
    ok(b && b[1] === 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' && b[2] !== a[2],
      `second CVM: its own app id and IP (${b && b.join(' | ')})`);
    ok(a && a[3] === 'never', 'a CVM that never handshaked shows "never"');
    ok((await cellAfter(page, 'Status')) === 'up', 'this node: status up');
    const wgCell = await cellAfter(page, 'WireGuard') || '';
    ok(/^10\.77\.0\.1(\/24)? \S{43}=$/.test(wgCell), `this node: WireGuard address and public key (${wgCell})`);
    await page.waitForFunction(() => {
      for (const tr of document.querySelectorAll('#node tr')) {
        const td = tr.querySelectorAll('td');
        if (td[0] && td[0].textContent === 'Live connections') return Number(td[1].textContent) >= 1;
      }
      return false;
    }, null, { timeout: 12000 }).catch(() => {});
    ok(Number(await cellAfter(page, 'Live connections')) >= 1,
      `the connection held open through the proxy is counted (${await cellAfter(page, 'Live connections')})`);
    ok(/2 registered/.test(await page.textContent('#meta')), 'GetMeta summary: 2 registered');
    ok((await page.textContent('#err')) === '', 'no error shown');
    ok(errors.length === 0, `no JavaScript errors (${errors.join('; ')})`);
    ok(await page.evaluate(() => !document.querySelector('#hosts img, #hosts script, #node img')),
      'no markup was created from registry data');
    try { fs.unlinkSync(shot); } catch (e) { /* not there yet */ }
    await page.screenshot({ path: shot, fullPage: true });
    const png = fs.existsSync(shot) ? fs.readFileSync(shot) : Buffer.alloc(0);
    const sig = png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR follows the signature: width and height, big-endian, at bytes 16 and 20
    const w = png.length >= 24 ? png.readUInt32BE(16) : 0;
    const h = png.length >= 24 ? png.readUInt32BE(20) : 0;
    ok(sig && png.length > 10000 && w >= 400 && h >= 300,
      `screenshot ${shot}: a PNG of ${w}x${h}, ${png.length} bytes`);

    const anon = await browser.newPage();
    const resp = await anon.request.get(`${base}/`);
    ok(resp.status() === 401, `the page itself needs the token (HTTP ${resp.status()})`);
    const bad = await anon.request.post(`${base}/prpc/Admin.Status?json`,
      { headers: { 'X-Admin-Token': 'wrong', 'Content-Type': 'application/json' }, data: '{}' });
    ok(bad.status() === 401, `the page's API call with a wrong token is refused (HTTP ${bad.status()})`);
  } catch (e) {
    ok(false, `unexpected: ${e}`);
  } finally {
    await browser.close();
    console.log(`1..${n}`);
    process.exit(failed ? 1 : 0);
  }
})();
