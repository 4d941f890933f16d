/*
 * Browser test of the shell around the views: a signed-out load is quiet (no 401 in the console, no
 * connection line on the login page); a lost connection shows "Reconnecting… Retry now" after 2 s,
 * retries at least every 5 s in its first minute, and comes back at once on "Retry now", on the
 * browser's `online` event and when the page becomes visible; the tab's title carries the unread
 * count; desktop notifications come only after the reader opted in with a click, and only while
 * the tab is hidden. TAP on stdout.
 *
 *   node t/browser/shell.mjs https://127.0.0.1:PORT
 *
 * The WebSocket goes through page.routeWebSocket, which relays it to the server or, while "down",
 * refuses it; the reconnect steps run on Playwright's clock, so backoff is counted, never waited for.
 */
import { check, list, newPage, pageApi, runTests, visible, waitForText, watch } from './lib.mjs';

const DESKTOP = { width: 1280, height: 800 };
const LIVE_TIMEOUT_MS = 10_000;

const tag = `${process.pid}${Date.now() % 100_000}`;
const user = (nickname) => ({
    nickname, first_name: 'Shell', last_name: 'Tester', email: `${nickname}@example.org`, password: 'long enough secret',
    age: 33, gender: 'other',
});

/** Makes every page of page's context add up its layout shifts (those not caused by input) in window.cls. */
function recordShifts(page) {
    return page.context().addInitScript(() => {
        window.cls = 0;
        window.shifts = [];
        new PerformanceObserver((list) => {
            for (const entry of list.getEntries()) {
                if (entry.hadRecentInput)
                    continue;
                window.cls += entry.value;
                window.shifts.push(`${entry.value.toFixed(4)}: ${entry.sources.map((s) => s.node?.nodeName + '.' + (s.node?.className ?? '')).join(', ')}`);
            }
        }).observe({ type: 'layout-shift', buffered: true });
    });
}

const shiftsOf = (page) => page.evaluate(() => ({ cls: window.cls, shifts: window.shifts }));

/** Waits (real time) until fn() is true; returns whether it became so. */
async function until(page, fn, timeout = LIVE_TIMEOUT_MS) {
    const deadline = Date.now() + timeout;
    for (;;) {
        if (await fn())
            return true;
        if (Date.now() > deadline)
            return false;
        await page.waitForTimeout(25);
    }
}

const connection = (page) => page.locator('footer .connection').getAttribute('data-state').catch(() => null);
const bannerShown = (page) => page.locator('.connection-banner').isVisible();

async function signedOutLoad(base, browser) {
    const page = await newPage(browser, DESKTOP);
    const watcher = watch(page, 'signed out'); // no HTTP error is expected at all
    await page.goto(`${base}/`);
    check(await visible(page, '#login-form'), 'signed out: the login form shows');
    await page.waitForLoadState('networkidle');
    const line = await page.locator('footer').innerText();
    check(!/connection/i.test(line), 'signed out: no "Connection: offline" on the login page', `footer: ${line}`);
    check(!(await bannerShown(page)), 'signed out: no reconnect banner');
    check(await page.title() === 'Log in · forumd', 'signed out: the title names the view', await page.title());
    const problems = watcher.problems();
    check(problems.length === 0, 'signed out: a logged-out load logs nothing (no 401 from the session check)', list(problems));
    await page.context().close();
}

async function reconnecting(base, browser) {
    const page = await newPage(browser, DESKTOP);
    const watcher = watch(page, 'reconnect');
    let down = false;
    let attempts = 0;
    let current = null;
    await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        attempts += 1;
        current = ws;
        if (down)
            ws.close({ code: 1011, reason: 'down' });
        else
            ws.connectToServer();
    });
    // a refused attempt asks GET /api/auth/session before it schedules the next: counted to know when it has
    let sessionChecks = 0;
    page.on('request', (req) => { if (req.url().endsWith('/api/auth/session')) sessionChecks += 1; });
    page.on('requestfinished', (req) => { if (req.url().endsWith('/api/auth/session')) sessionChecks -= 1; });
    page.on('requestfailed', (req) => { if (req.url().endsWith('/api/auth/session')) sessionChecks -= 1; });
    // an attempt has run its course: refused, checked, and the next one scheduled on the page's clock
    const settled = async () => await connection(page) === 'offline' && sessionChecks === 0;
    await page.clock.install();
    await page.goto(`${base}/`);
    await visible(page, '#login-form');
    const res = await pageApi(page, 'POST', '/api/auth/register', user(`carol${tag}`));
    check(res.status === 201, 'reconnect: carol registers', JSON.stringify(res));
    await page.reload();
    const online = await until(page, async () => await connection(page) === 'online');
    check(online, 'reconnect: the socket is online', `state: ${await connection(page)}`);
    // from here the page's time moves only when the test moves it
    await page.clock.pauseAt(Date.now() + 1000);

    down = true;
    current.close({ code: 1001, reason: 'gone' });
    await until(page, async () => await connection(page) !== 'online');
    check(!(await bannerShown(page)), 'reconnect: a connection just lost shows no banner yet');
    await page.clock.runFor(1500);
    check(!(await bannerShown(page)), 'reconnect: nor after 1.5 s');
    await page.clock.runFor(700);
    const shown = await until(page, () => bannerShown(page), 2000);
    const text = shown ? await page.locator('.connection-banner').innerText() : '';
    check(shown && /Reconnecting…/.test(text) && /Retry now/.test(text), 'reconnect: after 2 s a banner says "Reconnecting… Retry now"', text);

    // the first minute of an outage: a try in every 5 s, however many failed before
    const misses = [];
    for (let window = 1; window <= 8; window += 1) {
        const before = attempts;
        await page.clock.runFor(5_100);
        if (!(await until(page, async () => attempts > before && await settled(), 3000)))
            misses.push(`no attempt in window ${window} (${attempts} so far)`);
        await page.waitForTimeout(50);
    }
    check(misses.length === 0, 'reconnect: in the first minute, at most about 5 s between attempts', list(misses));

    down = false;
    let before = attempts;
    await page.getByRole('button', { name: 'Retry now' }).click();
    const back = await until(page, async () => attempts > before && await connection(page) === 'online');
    check(back, '"Retry now" reconnects at once', `attempts: ${before} → ${attempts}; state ${await connection(page)}`);
    check(!(await bannerShown(page)), 'reconnect: the banner goes once online');

    for (const [name, fire] of [
        ['the browser\'s online event', () => page.evaluate(() => window.dispatchEvent(new Event('online')))],
        ['the page becoming visible', () => page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')))],
    ]) {
        down = true;
        current.close({ code: 1001, reason: 'gone' });
        await until(page, async () => await connection(page) !== 'online');
        await page.clock.runFor(50);
        down = false;
        before = attempts;
        await page.waitForTimeout(300); // the page's own clock is stopped: no retry timer can fire meanwhile
        const waited = attempts === before;
        await fire();
        const again = await until(page, async () => attempts > before && await connection(page) === 'online');
        check(waited && again, `${name} reconnects at once`, `attempts: ${before} → ${attempts}; state ${await connection(page)}`);
    }
    const problems = watcher.problems();
    check(problems.length === 0, 'reconnect: no errors on the page', list(problems));
    await page.context().close();
}

/** A page whose Notification and visibility the test controls: notes it would show land in window.notes. */
async function attentionPage(browser) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: DESKTOP });
    await context.addInitScript(() => {
        window.notes = [];
        window.asked = 0;
        window.pageHidden = false;
        class FakeNotification {
            static permission = 'default';
            static async requestPermission() {
                window.asked += 1;
                FakeNotification.permission = 'granted';
                return 'granted';
            }
            constructor(title, options) {
                window.notes.push({ title, body: options?.body });
            }
            close() {}
        }
        window.Notification = FakeNotification;
        Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (window.pageHidden ? 'hidden' : 'visible') });
        Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => window.pageHidden });
    });
    const page = await context.newPage();
    return page;
}

/** Sends a private message from the user signed in on page (a WebSocket of its own). */
function sendMessage(page, to, body) {
    return page.evaluate(async ([to, body]) => {
        const ws = new WebSocket(`wss://${location.host}/ws`);
        const next = (type) => new Promise((resolve) => {
            ws.onmessage = (e) => {
                if (JSON.parse(e.data).type === type)
                    resolve();
            };
        });
        await next('hello');
        ws.send(JSON.stringify({ type: 'message.send', to, body, client_id: `${body}-${Math.random()}` }));
        await next('message');
        ws.close();
    }, [to, body]);
}

async function attention(base, browser) {
    const page = await attentionPage(browser);
    const watcher = watch(page, 'attention');
    await page.goto(`${base}/`);
    await visible(page, '#login-form');
    const dave = await pageApi(page, 'POST', '/api/auth/register', user(`dave${tag}`));
    await page.reload();
    await until(page, async () => await connection(page) === 'online');
    check(await page.title() === 'Forum · forumd', 'attention: the feed\'s title with nothing unread', await page.title());

    const sender = await newPage(browser, DESKTOP);
    await sender.goto(`${base}/`);
    await pageApi(sender, 'POST', '/api/auth/register', user(`erin${tag}`));
    const to = dave.json.user.id;
    const titled = (n) => until(page, async () => await page.title() === `(${n}) Forum · forumd`);

    await sendMessage(sender, to, 'one');
    check(await titled(1), 'attention: a message shows "(1) Forum · forumd" in the tab', await page.title());
    await page.evaluate(() => { window.pageHidden = true; });
    await sendMessage(sender, to, 'two');
    check(await titled(2), 'attention: the count follows: (2)', await page.title());
    check(await page.evaluate(() => window.notes.length === 0 && window.asked === 0),
        'attention: no notification and no permission asked before the reader opts in');

    await page.evaluate(() => { window.pageHidden = false; });
    const toggle = page.getByRole('button', { name: 'Turn on desktop notifications' });
    check(await toggle.isVisible(), 'attention: the footer offers "Turn on desktop notifications"');
    await toggle.click();
    const on = await until(page, () => page.getByRole('button', { name: 'Turn off desktop notifications' }).isVisible(), 3000);
    check(on && await page.evaluate(() => window.asked === 1), 'attention: a click asks for the permission, once, and the control turns into "Turn off"');

    await sendMessage(sender, to, 'three while you look');
    await titled(3);
    check(await page.evaluate(() => window.notes.length === 0), 'attention: no notification while the tab is on screen');
    await page.evaluate(() => { window.pageHidden = true; });
    await sendMessage(sender, to, 'four while away');
    const noted = await until(page, () => page.evaluate(() => window.notes.length === 1), 5000);
    const notes = await page.evaluate(() => window.notes);
    check(noted && notes[0].body === 'four while away', 'attention: opted in and hidden, a message becomes a desktop notification', JSON.stringify(notes));
    check(await titled(4), 'attention: (4) in the title', await page.title());

    const problems = watcher.problems();
    check(problems.length === 0, 'attention: no errors on the page', list(problems));
    await page.context().close();
    await sender.context().close();
}

/** Back from a post to a feed paged and scrolled down: the same posts, the same place, no page fetched again. */
async function feedBack(base, browser) {
    const page = await newPage(browser, DESKTOP);
    const watcher = watch(page, 'back');
    await page.goto(`${base}/`);
    await visible(page, '#login-form');
    await pageApi(page, 'POST', '/api/auth/register', user(`fay${tag}`));
    for (let i = 1; i <= 25; i += 1) {
        const res = await pageApi(page, 'POST', '/api/posts', { title: `Back post ${i}`, body: `Body ${i}`, categories: ['general'] });
        if (res.status !== 201)
            throw new Error(`creating post ${i}: ${JSON.stringify(res)}`);
    }
    await recordShifts(page);
    await page.reload();
    const cards = () => page.locator('.post-list > .post-card').count();
    await until(page, async () => await cards() === 20);
    await page.waitForLoadState('networkidle');
    await until(page, async () => await connection(page) === 'online');
    await page.waitForTimeout(300); // the frames after the last answer are drawn
    const feedShift = await shiftsOf(page);
    check(feedShift.cls <= 0.02, 'layout: the desktop feed loads with a layout shift of 0.02 at most', `CLS ${feedShift.cls}\n${feedShift.shifts.join('\n')}`);
    await page.locator('.load-more').click();
    await until(page, async () => await cards() >= 25);
    const ids = () => page.$$eval('.post-list > .post-card', (all) => all.map((c) => Number(c.dataset.id)));
    const before = await ids();
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    const y = await page.evaluate(() => window.scrollY);
    const pages = [];
    page.on('request', (req) => {
        if (new URL(req.url()).pathname === '/api/posts' && req.method() === 'GET')
            pages.push(new URL(req.url()).search);
    });
    const last = before[before.length - 1];
    await page.locator(`.post-card[data-id="${last}"] .post-card-link`).click();
    await until(page, async () => await page.evaluate(() => location.hash) === `#/post/${last}`);
    await visible(page, '#app h1');
    await page.goBack();
    await until(page, async () => await cards() === before.length);
    await page.waitForLoadState('networkidle');
    const after = await ids();
    const y2 = await page.evaluate(() => window.scrollY);
    check(JSON.stringify(after) === JSON.stringify(before), `back: the feed shows the ${before.length} posts it had loaded`, `before ${before.length}, after ${after.length}`);
    check(y > 0 && Math.abs(y2 - y) <= 2, 'back: at the scroll position it had', `scrollY before ${y}, after ${y2}`);
    check(!pages.some((q) => q.includes('before=')), 'back: no page fetched again but the first (for what is new)', pages.join(' '));

    await page.locator('.post-card-link').first().click();
    await until(page, async () => (await page.evaluate(() => location.hash)).startsWith('#/post/'));
    await page.locator('a.nav-link[href="#/"]').click();
    await until(page, async () => await cards() > 0);
    await page.waitForLoadState('networkidle');
    check(await cards() === 20, 'back: the feed reached by its link starts afresh (20 posts)', `cards: ${await cards()}`);
    const problems = watcher.problems();
    check(problems.length === 0, 'back: no errors on the page', list(problems));
    await page.context().close();
}

async function run(base, browser) {
    await signedOutLoad(base, browser);
    await reconnecting(base, browser);
    await attention(base, browser);
    await feedBack(base, browser);
}

process.exit(await runTests('shell.mjs', run, { timeoutMs: 150_000 }));
