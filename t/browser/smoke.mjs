/*
 * Browser smoke test: opens forumd's client page in Debian's Chromium, signed out, and reports TAP
 * on stdout.
 *
 *   node t/browser/smoke.mjs https://127.0.0.1:PORT
 *
 * FORUMD_SCREENSHOT=FILE.png also saves a screenshot of the page. The exit status is 0 when every
 * check passed and 1 otherwise, a crash or the overall time limit included; the browser is closed
 * on every path.
 */
import { check, focused, list, newPage, overflow, runTests, textOf, visible, watch } from './lib.mjs';

async function run(base, browser) {
    const page = await newPage(browser);
    const watcher = watch(page, 'page');
    const apiRequests = [];
    page.on('request', (req) => {
        if (new URL(req.url()).pathname.startsWith('/api/'))
            apiRequests.push(`${req.method()} ${new URL(req.url()).pathname}`);
    });
    // signed out, the page asks who is logged in (GET /api/auth/session: 200, user null, nothing logged)

    const response = await page.goto(`${base}/`, { waitUntil: 'load' });
    check(response?.status() === 200, 'the client page loads', `status: ${response?.status()}`);

    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0]?.nextHopProtocol);
    check(protocol === 'h2', 'it comes over HTTP/2', `nextHopProtocol: ${protocol}`);

    const csp = response ? await response.headerValue('content-security-policy') : null;
    check(csp !== null && /script-src 'self'/.test(csp), 'with a Content-Security-Policy header', `content-security-policy: ${csp}`);

    const brand = await textOf(page, 'header.site-header .brand');
    check(brand !== null && brand.includes('forumd'), 'app.js built the header with the name forumd', `header text: ${brand}`);

    const heading = await textOf(page, '#app h1');
    check(heading === 'Log in', 'and, signed out, rendered the login view into main', `heading: ${heading}`);

    const form = await visible(page, '#login-form #login-login') && await visible(page, '#login-form #login-password');
    check(form, 'the login form asks for the nickname or email and the password');

    const nav = await page.locator('.site-nav').isVisible();
    check(!nav, 'the signed-in navigation is not shown');

    const hash = await page.evaluate(() => location.hash);
    check(hash === '#/login', 'the URL says #/login', `hash: ${hash}`);

    // signed out there is no live connection to speak of: the footer does not mention one
    const footer = await page.locator('footer.site-footer').innerText();
    check(!/connection|offline/i.test(footer), 'the footer says nothing about a connection', `footer: ${footer}`);

    await page.keyboard.press('Tab');
    const firstStop = await focused(page);
    await page.keyboard.press('Enter');
    const afterSkip = await focused(page);
    check(firstStop === 'a.skip-link' && afterSkip === 'main#app', 'the first Tab reaches the skip link and Enter moves focus to main',
          `first focus: ${firstStop}; after Enter: ${afterSkip}`);
    await page.keyboard.press('Tab');
    const inForm = await focused(page);
    check(inForm === 'input#login-login', 'the next Tab reaches the first field of the form', `focus: ${inForm}`);

    // let late requests (the icon, module imports) finish before the errors are counted
    await page.waitForLoadState('networkidle').catch(() => {});

    if (process.env.FORUMD_SCREENSHOT) {
        await page.screenshot({ path: process.env.FORUMD_SCREENSHOT, fullPage: true });
        console.log(`# screenshot: ${process.env.FORUMD_SCREENSHOT}`);
    }

    await page.setViewportSize({ width: 360, height: 740 });
    const extra = await overflow(page);
    check(extra <= 0, 'it fits a phone-width screen without sideways scrolling', `overflow: ${extra}px`);

    check(apiRequests.length === 1 && apiRequests[0] === 'GET /api/auth/session', 'the only /api/ request asks who is logged in',
          list(apiRequests));
    const problems = watcher.problems();
    check(problems.length === 0, 'no console errors, page errors or failed requests but the expected 401', list(problems));
}

process.exit(await runTests('smoke.mjs', run));
