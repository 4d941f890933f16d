/*
 * What the browser tests share: Debian's Chromium launched the same way every time, TAP output on
 * stdout, a time limit on the whole run, and a watcher that records what went wrong on a page
 * (console errors, uncaught errors, failed requests) with room for the HTTP errors a step expects.
 *
 *   process.exit(await runTests('name.mjs', async (base, browser) => { ... check(ok, name) ... }));
 */
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
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
export const STEP_TIMEOUT_MS = 15_000;
// module scripts run before the load event that page.goto() waits for; views wait for one API call
export const ELEMENT_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 10_000;

let count = 0;
let failed = 0;

/** Prints one TAP test line, and the diagnostic under it when the check failed; returns ok. */
export function check(ok, name, diagnostic) {
    count += 1;
    if (!ok)
        failed += 1;
    console.log(`${ok ? 'ok' : 'not ok'} ${count} - ${name}`);
    if (!ok && diagnostic !== undefined) {
        for (const line of String(diagnostic).split('\n'))
            console.log(`#   ${line}`);
    }
    return Boolean(ok);
}

export function list(items) {
    return items.length ? items.join('\n') : '(none)';
}

/** A new browser context over HTTPS that accepts the self-signed certificate, and a page in it. */
export async function newPage(browser, viewport = { width: 1280, height: 800 }) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    return page;
}

/** The text of the first element matching selector once it is attached, or null if none appears. */
export async function textOf(page, selector, timeout = ELEMENT_TIMEOUT_MS) {
    try {
        return await page.locator(selector).first().textContent({ timeout });
    } catch {
        return null;
    }
}

/** Waits until selector is visible; returns whether it became so. */
export async function visible(page, selector, timeout = ELEMENT_TIMEOUT_MS) {
    try {
        await page.locator(selector).first().waitFor({ state: 'visible', timeout });
        return true;
    } catch {
        return false;
    }
}

/** Waits until the first element matching selector has exactly this text; returns the last text seen. */
export async function waitForText(page, selector, text, timeout = ELEMENT_TIMEOUT_MS) {
    const deadline = Date.now() + timeout;
    let seen = null;
    while (Date.now() < deadline) {
        seen = await page.locator(selector).first().textContent({ timeout: 200 }).catch(() => null);
        if (seen === text)
            return seen;
        await page.waitForTimeout(50);
    }
    return seen;
}

/**
 * Calls forumd's API from inside page (same origin, with the page's session cookie), as the client
 * does: resolves to {status, json}. The page must already be on the site.
 */
export function pageApi(page, method, path, body) {
    return page.evaluate(async ([method, path, body]) => {
        const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
        if (body !== null) {
            init.headers['Content-Type'] = 'application/json';
            init.body = JSON.stringify(body);
        }
        const res = await fetch(path, init);
        const json = await res.json().catch(() => null);
        return { status: res.status, json };
    }, [method, path, body ?? null]);
}

/** The focused element as tag#id.class, e.g. "a.skip-link". */
export function focused(page) {
    return page.evaluate(() => {
        const el = document.activeElement;
        if (!el)
            return 'nothing';
        return el.tagName.toLowerCase() + (el.id ? `#${el.id}` : '') + [...el.classList].map((c) => `.${c}`).join('');
    });
}

/** How many pixels the page is wider than the window (0 or less: no sideways scrolling). */
export function overflow(page) {
    return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

const FAILED_LOAD = /^Failed to load resource: the server responded with a status of (\d+)/;

/**
 * Records on page: console errors, uncaught page errors, failed requests and answers with status
 * 400 or more. expectHttpError(path, status) allows one such answer and the one console line
 * Chromium prints for it ("Failed to load resource: ... status of 401"), for a step that wants it;
 * problems() lists everything else.
 */
export function watch(page, label) {
    const consoleErrors = [];
    const pageErrors = [];
    const requestFailures = [];
    const badAnswers = [];
    const allowed = [];

    page.on('console', (msg) => {
        if (msg.type() === 'error')
            consoleErrors.push({ text: msg.text(), url: msg.location().url || '', line: msg.location().lineNumber + 1 });
    });
    page.on('pageerror', (err) => pageErrors.push(err.stack || String(err)));
    // net::ERR_ABORTED is a request the page itself gave up (it navigated, reloaded or tore a view down
    // while a fetch was in flight): not a failure of the server. Every other failure counts.
    page.on('requestfailed', (req) => {
        if (req.failure()?.errorText !== 'net::ERR_ABORTED')
            requestFailures.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
    });
    page.on('response', (res) => {
        if (res.status() >= 400)
            badAnswers.push({ method: res.request().method(), url: res.url(), status: res.status() });
    });

    const pathOf = (url) => {
        try {
            return new URL(url).pathname;
        } catch {
            return url;
        }
    };
    // takes the first allowance for (path, status) out of the list; false when there is none
    const takeAllowance = (kind, path, status) => {
        const i = allowed.findIndex((a) => a[kind] && a.path === path && a.status === status);
        if (i < 0)
            return false;
        allowed[i][kind] = false;
        return true;
    };

    return {
        label,
        expectHttpError(path, status) {
            allowed.push({ path, status, console: true, answer: true });
        },
        problems() {
            const out = [];
            for (const a of badAnswers) {
                if (!takeAllowance('answer', pathOf(a.url), a.status))
                    out.push(`${label}: ${a.method} ${a.url}: ${a.status}`);
            }
            for (const e of consoleErrors) {
                const m = FAILED_LOAD.exec(e.text);
                if (!(m && takeAllowance('console', pathOf(e.url), Number(m[1]))))
                    out.push(`${label}: console: ${e.text}${e.url ? ` (${e.url}:${e.line})` : ''}`);
            }
            out.push(...pageErrors.map((e) => `${label}: uncaught: ${e}`));
            out.push(...requestFailures.map((e) => `${label}: request failed: ${e}`));
            return out;
        },
    };
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

/**
 * Runs run(base, browser) with base taken from the command line (https://HOST:PORT), inside a time
 * limit, then closes the browser and prints the plan. Resolves to the exit status: 0 when every
 * check passed, 1 otherwise (a crash or the time limit included), 2 for a bad command line.
 */
export async function runTests(script, run, { timeoutMs = 60_000 } = {}) {
    const base = (process.argv[2] || '').replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]+$/.test(base)) {
        console.error(`usage: node ${script} https://HOST:PORT`);
        return 2;
    }

    const slot = {};
    let timer;
    const limit = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the run took longer than ${timeoutMs / 1000} s`)), timeoutMs);
    });
    const work = (async () => {
        slot.browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: CHROMIUM_ARGS,
            timeout: STEP_TIMEOUT_MS,
        });
        await run(base, slot.browser);
    })();
    work.catch(() => {}); // after the time limit its rejection is expected and already reported
    try {
        await Promise.race([work, limit]);
    } catch (err) {
        check(false, 'the run completes', err.stack || String(err));
    } finally {
        clearTimeout(timer);
        await closeBrowser(slot.browser);
    }
    console.log(`1..${count}`);
    return failed ? 1 : 0;
}
