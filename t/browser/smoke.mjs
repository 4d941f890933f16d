/*
 * Browser smoke test: opens forumd's client page in Debian's Chromium and reports TAP on stdout.
 *
 *   node t/browser/smoke.mjs https://127.0.0.1:PORT
 *
 * FORUMD_SCREENSHOT=FILE.png also saves a screenshot of the page. The exit status is 0 when every
 * check passed and 1 otherwise, a crash or the overall time limit included; the browser is closed
 * on every path.
 */
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const RUN_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 15_000;
// module scripts run before the load event that page.goto() waits for: what app.js builds is there at once
const ELEMENT_TIMEOUT_MS = 2_000;
const CLOSE_TIMEOUT_MS = 10_000;
const CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    // the development certificate is self-signed
    '--ignore-certificate-errors',
];

let count = 0;
let failed = 0;

/** Prints one TAP test line, and the diagnostic under it when the check failed. */
function check(ok, name, diagnostic) {
    count += 1;
    if (!ok)
        failed += 1;
    console.log(`${ok ? 'ok' : 'not ok'} ${count} - ${name}`);
    if (!ok && diagnostic !== undefined) {
        for (const line of String(diagnostic).split('\n'))
            console.log(`#   ${line}`);
    }
}

/** The text of the first element matching selector once it is attached, or null if none appears. */
async function textOf(page, selector) {
    try {
        return await page.locator(selector).first().textContent({ timeout: ELEMENT_TIMEOUT_MS });
    } catch {
        return null;
    }
}

/** The focused element as tag#id.class, e.g. "a.skip-link". */
function focused(page) {
    return page.evaluate(() => {
        const el = document.activeElement;
        if (!el)
            return 'nothing';
        return el.tagName.toLowerCase() + (el.id ? `#${el.id}` : '') + [...el.classList].map((c) => `.${c}`).join('');
    });
}

function list(items) {
    return items.length ? items.join('\n') : '(none)';
}

/* Every check of the page; browserSlot.browser is set as soon as there is a browser to close. */
async function run(base, browserSlot) {
    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: STEP_TIMEOUT_MS,
    });
    browserSlot.browser = browser;
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);

    const consoleErrors = [];
    const pageErrors = [];
    const failedRequests = [];
    const apiRequests = [];
    page.on('console', (msg) => {
        if (msg.type() === 'error') {
            const { url, lineNumber } = msg.location();
            consoleErrors.push(url ? `${msg.text()} (${url}:${lineNumber + 1})` : msg.text());
        }
    });
    page.on('pageerror', (err) => pageErrors.push(err.stack || String(err)));
    page.on('request', (req) => {
        if (new URL(req.url()).pathname.startsWith('/api/'))
            apiRequests.push(`${req.method()} ${req.url()}`);
    });
    page.on('requestfailed', (req) => failedRequests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
    page.on('response', (res) => {
        if (res.status() >= 400)
            failedRequests.push(`${res.request().method()} ${res.url()}: ${res.status()}`);
    });

    const response = await page.goto(`${base}/`, { waitUntil: 'load' });
    check(response?.status() === 200, 'the client page loads', `status: ${response?.status()}`);

    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.nextHopProtocol);
    check(protocol === 'h2', 'it comes over HTTP/2', `nextHopProtocol: ${protocol}`);

    const csp = response ? await response.headerValue('content-security-policy') : null;
    check(csp !== null && /script-src 'self'/.test(csp), 'with a Content-Security-Policy header', `content-security-policy: ${csp}`);

    const brand = await textOf(page, 'header.site-header .brand');
    check(brand !== null && brand.includes('forumd'), 'app.js built the header with the name forumd', `header text: ${brand}`);

    const heading = await textOf(page, '#app h1');
    check(heading !== null && heading.includes('forumd'), 'and rendered the first view into main', `heading: ${heading}`);

    const connection = await textOf(page, 'footer.site-footer .connection');
    check(connection === 'offline', 'the footer shows the connection as offline', `connection: ${connection}`);

    await page.keyboard.press('Tab');
    const firstStop = await focused(page);
    await page.keyboard.press('Enter');
    const afterSkip = await focused(page);
    check(firstStop === 'a.skip-link' && afterSkip === 'main#app', 'the first Tab reaches the skip link and Enter moves focus to main',
          `first focus: ${firstStop}; after Enter: ${afterSkip}`);

    // let late requests (the icon, module imports) finish before the errors are counted
    await page.waitForLoadState('networkidle').catch(() => {});

    if (process.env.FORUMD_SCREENSHOT) {
        await page.screenshot({ path: process.env.FORUMD_SCREENSHOT, fullPage: true });
        console.log(`# screenshot: ${process.env.FORUMD_SCREENSHOT}`);
    }

    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(overflow <= 0, 'it fits a phone-width screen without sideways scrolling', `overflow: ${overflow}px`);

    check(apiRequests.length === 0, 'the page asks for no /api/ route', list(apiRequests));
    check(failedRequests.length === 0, 'no request failed', list(failedRequests));
    check(consoleErrors.length === 0, 'no console errors', list(consoleErrors));
    check(pageErrors.length === 0, 'no uncaught page errors', list(pageErrors));
}

async function closeBrowser(browser) {
    if (!browser)
        return;
    let timer;
    const limit = new Promise((resolve) => {
        timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS);
    });
    const result = await Promise.race([browser.close().catch((err) => err), limit]);
    clearTimeout(timer);
    // after a hung close, process.exit() still ends Chromium: playwright kills what it launched on exit
    if (result === 'timeout')
        console.log('# closing the browser timed out');
}

async function main() {
    const base = (process.argv[2] || '').replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]+$/.test(base)) {
        console.error('usage: node smoke.mjs https://HOST:PORT');
        return 2;
    }

    const browserSlot = {};
    let timer;
    const limit = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the run took longer than ${RUN_TIMEOUT_MS / 1000} s`)), RUN_TIMEOUT_MS);
    });
    try {
        await Promise.race([run(base, browserSlot), limit]);
    } catch (err) {
        check(false, 'the run completes', err.stack || String(err));
    } finally {
        clearTimeout(timer);
        await closeBrowser(browserSlot.browser);
    }
    console.log(`1..${count}`);
    return failed ? 1 : 0;
}

process.exit(await main());
