/*
 * Browser test of where the chat sits (issue 14, item 2): from about 700 px up the members list is
 * on screen beside the feed at all times (800 and 1024 px wide, two windows side by side on one
 * screen), a member's row is clickable there and opens the conversation beside the list; below it
 * a phone keeps the "Messages" panel that opens over the page. Each member's row shows the last
 * message's preview under the name (item 9), live. TAP on stdout.
 *
 *   node t/browser/layout.mjs https://127.0.0.1:PORT
 */
import { check, newPage, runTests, list, watch } from './lib.mjs';
import { register as registerNickname, until } from './chatlib.mjs';

const SIDE_BY_SIDE = [{ width: 800, height: 900 }, { width: 1024, height: 800 }];
const PHONE = { width: 390, height: 844 };
const LIVE_MS = 5_000;

const tag = `${process.pid % 1000}${Date.now() % 100_000}`;
const nick = (name) => `${name}_${tag}`;
const register = (page, base, name) => registerNickname(page, base, nick(name));

/**
 * Where the members list and one member's row are: inside the window, shown, and the row's button
 * the topmost element at its centre (nothing, such as a bar or a panel, lies over it).
 */
function placeOf(page, id) {
    return page.evaluate((id) => {
        const inWindow = (r) => r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0
            && r.bottom <= innerHeight + 0.5 && r.right <= innerWidth + 0.5;
        const users = document.querySelector('.chat-users');
        const button = document.querySelector(`.chat-user[data-user-id="${id}"] .chat-user-button`);
        if (!users || !button)
            return { users: Boolean(users), button: Boolean(button) };
        const u = users.getBoundingClientRect();
        const b = button.getBoundingClientRect();
        const top = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
        return {
            listShown: users.checkVisibility({ visibilityProperty: true }) && inWindow(u),
            rowShown: button.checkVisibility({ visibilityProperty: true }) && inWindow(b),
            rowOnTop: Boolean(top && button.contains(top)),
            messagesBar: document.querySelector('.chat-toggle')?.checkVisibility() ?? false,
        };
    }, id);
}

/** Two windows side by side: the list beside the feed, a row clicked opens a conversation beside it. */
async function sideBySide(a, base, bob, viewport) {
    const size = `${viewport.width}×${viewport.height}`;
    await a.setViewportSize(viewport);
    await a.goto(`${base}/`);
    await a.waitForSelector(`.chat-user[data-user-id="${bob.id}"]`, { state: 'attached' });
    const place = await until(async () => {
        const p = await placeOf(a, bob.id);
        return p.listShown && p.rowShown && p.rowOnTop ? p : null;
    }) ?? await placeOf(a, bob.id);
    const feed = await a.evaluate(() => {
        const main = document.querySelector('main')?.getBoundingClientRect();
        const aside = document.querySelector('.chat-users')?.getBoundingClientRect();
        return main && aside ? { mainRight: main.right, listLeft: aside.left, mainWidth: main.width } : null;
    });
    check(place.listShown && place.rowShown && place.rowOnTop && !place.messagesBar,
          `at ${size} the members list is on screen without opening anything, a member's row shown and clickable`,
          JSON.stringify(place));
    check(feed && feed.mainRight <= feed.listLeft + 1 && feed.mainWidth >= 320,
          `at ${size} the feed keeps a column of its own beside the list`, JSON.stringify(feed));

    await a.click(`.chat-user[data-user-id="${bob.id}"] .chat-user-button`);
    const opened = await until(() => a.evaluate(() => {
        const conv = document.querySelector('.chat-conversation');
        return Boolean(conv && conv.checkVisibility() && document.querySelector('#chat-input'));
    }));
    const after = await placeOf(a, bob.id);
    check(opened && after.listShown && after.rowShown,
          `at ${size} clicking the member opens the conversation, and the list stays on screen beside it`,
          JSON.stringify({ opened, ...after }));
    await a.focus('#chat-input');
    await a.keyboard.press('Escape');
    await until(async () => await a.locator('.chat-conversation').count() === 0);
}

/** Sends one private message over a WebSocket of the page's own; resolves once the server stored it. */
function wsSend(page, to, body) {
    return page.evaluate(async ({ to, body }) => {
        const ws = new WebSocket(`wss://${location.host}/ws`);
        const clientId = `layout-${Date.now()}`;
        const got = await new Promise((resolve, reject) => {
            setTimeout(() => reject(new Error('no answer over the test socket')), 10_000);
            ws.onmessage = (event) => {
                const f = JSON.parse(event.data);
                if (f.type === 'hello')
                    ws.send(JSON.stringify({ type: 'message.send', to, body, client_id: clientId }));
                else if (f.type === 'error' || (f.type === 'message' && f.message?.client_id === clientId))
                    resolve(f);
            };
        });
        ws.close();
        return got;
    }, { to, body });
}

const previewOf = (page, id) => page.evaluate((id) => {
    const el = document.querySelector(`.chat-user[data-user-id="${id}"] .chat-user-preview`);
    return el && el.checkVisibility() ? { text: el.textContent, dir: el.getAttribute('dir') } : null;
}, id);

/** The last message's preview under the member's name: from GET /api/users, and live. */
async function preview(a, b, base, ann, bob) {
    const first = `${'x'.repeat(79)}\u{1F600}\u{1F600} more`;
    await wsSend(b, ann.id, first);
    await a.goto(`${base}/`);
    const loaded = await until(() => previewOf(a, bob.id));
    check(loaded && loaded.text === `${'x'.repeat(79)}\u{1F600}` && loaded.dir === 'auto',
          'under a member\'s name, the last message\'s first 80 characters (dir="auto")', JSON.stringify(loaded));
    const reply = '<b>not bold</b> مرحبا';
    await wsSend(b, ann.id, reply);
    const live = await until(async () => (await previewOf(a, bob.id))?.text === reply);
    const asText = await a.evaluate((id) => !document.querySelector(`.chat-user[data-user-id="${id}"] .chat-user-preview b`), bob.id);
    check(live && asText, 'a new message replaces it at once, as text', JSON.stringify(await previewOf(a, bob.id)));
}

/** A phone: the list waits behind the "Messages" bar, which opens it as a panel; a row opens a conversation. */
async function phone(a, base, bob) {
    await a.setViewportSize(PHONE);
    await a.goto(`${base}/`);
    await a.waitForSelector(`.chat-user[data-user-id="${bob.id}"]`, { state: 'attached' });
    const closed = await placeOf(a, bob.id);
    check(!closed.listShown && closed.messagesBar, 'at 390×844 the list waits behind the "Messages" bar', JSON.stringify(closed));
    await a.click('.chat-toggle');
    const open = await until(async () => {
        const p = await placeOf(a, bob.id);
        return p.listShown && p.rowOnTop ? p : null;
    }) ?? await placeOf(a, bob.id);
    const dialog = await a.getByRole('dialog', { name: 'Messages' }).count();
    check(open.listShown && open.rowShown && open.rowOnTop && dialog === 1,
          'the bar opens the panel, a dialog named "Messages" with the list and the member in it', JSON.stringify({ ...open, dialog }));
    await a.click(`.chat-user[data-user-id="${bob.id}"] .chat-user-button`);
    const conv = await until(() => a.evaluate(() => {
        const c = document.querySelector('.chat-conversation');
        const users = document.querySelector('.chat-users');
        return Boolean(c && c.checkVisibility() && users && !users.checkVisibility());
    }));
    check(conv, 'a row opens the conversation in the panel, in place of the list (one thing at a time on a phone)');
}

async function run(base, browser) {
    const a = await newPage(browser, SIDE_BY_SIDE[0]);
    const b = await newPage(browser, SIDE_BY_SIDE[0]);
    const watcher = watch(a, 'ann');
    const ann = await register(a, base, 'ann');
    const bob = await register(b, base, 'bob');
    await b.goto(`${base}/favicon.svg`);
    for (const viewport of SIDE_BY_SIDE)
        await sideBySide(a, base, bob, viewport);
    await phone(a, base, bob);
    await a.setViewportSize(SIDE_BY_SIDE[0]);
    await preview(a, b, base, ann, bob);
    const problems = watcher.problems();
    check(problems.length === 0, 'no console errors, page errors or failed requests', list(problems));
}

process.exit(await runTests('layout.mjs', run, { timeoutMs: 90_000 }));
