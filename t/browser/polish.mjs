/*
 * Browser test of the chat's finish (issue 14): a conversation and a room open on their newest ten
 * messages however tall the window, and load more only when the reader goes up; a conversation
 * with unread messages opens at the first of them under a "New messages" line and marks read only
 * what was on screen; right-to-left text; a draft per conversation and per room; links, relative
 * times that move on, grouped messages and day lines; a wider desktop column for a conversation;
 * the last message's time in the members list; the phone panel as a modal dialog, and Escape
 * closing a desktop conversation or room; one presence for a member who never connected. TAP on
 * stdout.
 *
 *   node t/browser/polish.mjs https://127.0.0.1:PORT
 */
import { check, list, newPage, runTests, watch } from './lib.mjs';
import { register as registerNickname, until } from './chatlib.mjs';

const DESKTOP = { width: 1280, height: 800 };
const TALL = { width: 1280, height: 1600 };
const PHONE = { width: 390, height: 844 };
const LIVE_MS = 5_000;
const LOBBY = 1;

const tag = `${process.pid % 1000}${Date.now() % 100_000}`;
const nick = (name) => `${name}_${tag}`;
const register = (page, base, name) => registerNickname(page, base, nick(name));

/**
 * Sends frames over a WebSocket of the page's own (the page shows a plain file of the site), each
 * after the server's answer to the one before: {to, body} a private message, {room, body} a room
 * message. Returns the stored messages.
 */
function wsSend(page, items) {
    return page.evaluate(async (items) => {
        const ws = new WebSocket(`wss://${location.host}/ws`);
        const frames = [];
        let wake = () => {};
        ws.onmessage = (event) => {
            frames.push(JSON.parse(event.data));
            wake();
        };
        const next = async (pred) => {
            for (let waited = 0; waited < 10_000; waited += 100) {
                const i = frames.findIndex(pred);
                if (i >= 0)
                    return frames.splice(i, 1)[0];
                await new Promise((resolve) => {
                    wake = resolve;
                    setTimeout(resolve, 100);
                });
            }
            throw new Error('no answer over the test socket');
        };
        await next((f) => f.type === 'hello');
        const out = [];
        for (const [i, item] of items.entries()) {
            const clientId = `polish-${Date.now()}-${i}`;
            ws.send(JSON.stringify(item.room
                ? { type: 'room.send', room: item.room, body: item.body, client_id: clientId }
                : { type: 'message.send', to: item.to, body: item.body, client_id: clientId }));
            const got = await next((f) => (f.type === 'message' || f.type === 'room.message' || f.type === 'error')
                && (f.message?.client_id === clientId || f.ref === clientId));
            if (got.type === 'error')
                throw new Error(`refused: ${JSON.stringify(got)}`);
            out.push(got.message);
        }
        ws.close();
        return out;
    }, items);
}

const many = (n, text, to) => Array.from({ length: n }, (_, i) => ({ to, body: `${text} ${i + 1}` }));

const shownIds = (page, scope) => page.$$eval(`${scope} .chat-messages > li[data-id]`, (els) => els.map((li) => Number(li.dataset.id)));

const openWith = (page, user) => page.click(`.chat-user[data-user-id="${user.id}"] .chat-user-button`);
const openRoom = (page, id) => page.click(`.room-item[data-room-id="${id}"] .chat-user-button`);

async function serverUnread(page, base, id) {
    const res = await page.context().request.get(`${base}/api/users?limit=200`);
    return (await res.json()).users.find((u) => u.id === id)?.unread;
}

/** Counts the page's requests whose path matches re. */
function countRequests(page, re) {
    const seen = [];
    page.on('request', (req) => {
        if (re.test(new URL(req.url()).pathname))
            seen.push(req.url());
    });
    return seen;
}

// --- the steps ---

/** Item 1: ten messages, one request, in a window where twenty would fit; more on a wheel turn up. */
async function tenOnly(t, users) {
    const { base, carl } = users;
    const history = countRequests(t, new RegExp(`^/api/messages/${carl.id}$`));
    const roomHistory = countRequests(t, new RegExp(`^/api/rooms/${LOBBY}/messages$`));
    await t.goto(`${base}/`);
    await t.waitForSelector(`.chat-user[data-user-id="${carl.id}"]`);
    await openWith(t, carl);
    await until(async () => (await shownIds(t, '.chat-conversation')).length >= 10);
    await t.waitForTimeout(800); // room for the further pages of a log that fills itself
    const fits = await t.evaluate(() => {
        const log = document.querySelector('.chat-conversation .chat-log');
        return log.scrollHeight <= log.clientHeight;
    });
    let ids = await shownIds(t, '.chat-conversation');
    check(ids.length === 10 && history.length === 1 && fits,
          'in a 1600 px window a conversation of 30 read messages opens on its newest 10, with one request, though more would fit',
          `shown: ${ids.length}; requests: ${list(history)}; log fits without scrolling: ${fits}`);
    const box = await t.locator('.chat-conversation .chat-log').boundingBox();
    await t.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await t.mouse.wheel(0, -200);
    await until(async () => (await shownIds(t, '.chat-conversation')).length === 20);
    await t.waitForTimeout(500);
    ids = await shownIds(t, '.chat-conversation');
    check(ids.length === 20 && history.length === 2, 'a wheel turn upward over the log that cannot scroll yet loads the next 10, with one request',
          `shown: ${ids.length}; requests: ${history.length}`);
    for (let i = 0; i < 10; i++)
        await t.mouse.wheel(0, -100);
    await until(async () => (await shownIds(t, '.chat-conversation')).length === 30);
    await t.waitForTimeout(500);
    check(history.length === 3, 'a burst of wheel turns asks for one page at a time, and none when there are no more',
          `requests: ${history.length}`);

    await openRoom(t, LOBBY);
    await until(async () => (await shownIds(t, '.room-view')).length >= 10);
    await t.waitForTimeout(800);
    ids = await shownIds(t, '.room-view');
    check(ids.length === 10 && roomHistory.length === 1, 'the lobby too opens on its newest 10 messages with one request',
          `shown: ${ids.length}; requests: ${list(roomHistory)}`);
    const roomBox = await t.locator('.room-view .chat-log').boundingBox();
    await t.mouse.move(roomBox.x + roomBox.width / 2, roomBox.y + roomBox.height / 2);
    await t.mouse.wheel(0, -200);
    await until(async () => (await shownIds(t, '.room-view')).length === 20);
    check(roomHistory.length === 2, 'and a wheel turn upward loads the next 10 there', `requests: ${roomHistory.length}`);
}

/** Item 3: 23 unread open at the first of them, and only what was on screen is read. */
async function unread(b, users) {
    const { base, dana } = users;
    const badge = await until(async () => await b.evaluate((id) => {
        const el = document.querySelector(`.chat-user[data-user-id="${id}"] .chat-badge`);
        return el && !el.hidden && el.firstChild.textContent === '23';
    }, dana.id));
    check(badge, 'dana sends ben 23 messages: a badge of 23');
    await openWith(b, dana);
    const at = await until(async () => b.evaluate(() => {
        const line = document.querySelector('.chat-conversation .chat-new-line');
        const log = document.querySelector('.chat-conversation .chat-log');
        if (!line || !log)
            return null;
        const first = line.nextElementSibling;
        const l = log.getBoundingClientRect();
        const r = line.getBoundingClientRect();
        return { text: line.textContent, firstBody: first?.querySelector('.chat-message-body')?.textContent,
            inView: r.top >= l.top - 1 && r.bottom <= l.bottom + 1 };
    }));
    check(at && at.text === 'New messages' && at.firstBody === 'unread 1' && at.inView,
          'opening it shows a "New messages" line in view, right above the first unread message', JSON.stringify(at));
    await b.waitForTimeout(800);
    const left = await serverUnread(b, base, dana.id);
    const shownBadge = await b.evaluate((id) => {
        const el = document.querySelector(`.chat-user[data-user-id="${id}"] .chat-badge`);
        return el.hidden ? '0' : el.firstChild.textContent;
    }, dana.id);
    check(left > 0 && left < 23 && String(left) === shownBadge,
          'only the messages shown are marked read: the server still counts the rest, and the badge says the same',
          `server unread: ${left}; badge: ${shownBadge}`);
    await b.evaluate(() => {
        const log = document.querySelector('.chat-conversation .chat-log');
        log.scrollTop = log.scrollHeight;
    });
    const none = await until(async () => await serverUnread(b, base, dana.id) === 0);
    const badgeGone = await until(() => b.evaluate((id) => document.querySelector(`.chat-user[data-user-id="${id}"] .chat-badge`).hidden, dana.id));
    check(none && badgeGone, 'scrolled to the end, all 23 are read, on the server and on the badge');
}

/** Item 9: grouping, day lines, links, relative times, the wide column, the list's last time. */
async function reads(b, users, links, newest) {
    const groups = await b.$$eval('.chat-conversation .chat-messages > li[data-id]', (els) => els.map((li) => ({
        grouped: li.dataset.grouped,
        authorShown: li.querySelector('.chat-message-meta').getBoundingClientRect().width > 2,
    })));
    check(groups.length >= 23 && groups[0].grouped === 'false' && groups[0].authorShown
          && groups.slice(1).every((g) => g.grouped === 'true' && !g.authorShown),
          'consecutive messages from dana are grouped: her name and time show on the first only', JSON.stringify(groups.slice(0, 3)));
    const days = await b.$$eval('.chat-conversation .chat-messages > li.chat-day', (els) => els.map((el) => el.textContent));
    check(days.length === 1 && days[0] === 'Today', 'a "Today" line starts the day\'s messages, once', list(days));

    const body = await b.evaluate((id) => {
        const li = document.querySelector(`.chat-conversation li[data-id="${id}"]`);
        const p = li?.querySelector('.chat-message-body');
        return p && {
            text: p.textContent,
            elements: [...p.querySelectorAll('*')].map((el) => el.tagName),
            links: [...p.querySelectorAll('a')].map((a) => ({ href: a.getAttribute('href'), text: a.textContent, rel: a.rel, target: a.target })),
        };
    }, links.id);
    const want = [
        { href: 'https://example.org/wiki/a_(b)', text: 'https://example.org/wiki/a_(b)', rel: 'noopener noreferrer nofollow', target: '_blank' },
        { href: 'http://example.com/x?y=1', text: 'http://example.com/x?y=1', rel: 'noopener noreferrer nofollow', target: '_blank' },
    ];
    check(body && JSON.stringify(body.links) === JSON.stringify(want) && body.text === links.body && body.elements.every((t) => t === 'A'),
          'http and https addresses become links (new tab, noopener noreferrer nofollow), other schemes and markup stay text',
          JSON.stringify(body));

    const time = await b.evaluate((id) => {
        const t = document.querySelector(`.chat-conversation li[data-id="${id}"] time`);
        return t && { text: t.textContent, title: t.title, datetime: t.getAttribute('datetime') };
    }, links.id);
    check(time && time.text === 'just now' && time.title.includes(String(new Date().getFullYear())) && time.datetime === links.created_at,
          'a message just sent says "just now", with the full date in its title and the instant in datetime', JSON.stringify(time));

    const width = await b.evaluate(() => document.querySelector('.site-aside').getBoundingClientRect().width);
    const rem = await b.evaluate(() => parseFloat(getComputedStyle(document.documentElement).fontSize));
    check(width > 22 * rem, `on a desktop the open conversation gets more than a 21rem column (${Math.round(width)} px)`);

    const last = await b.evaluate((id) => {
        const t = document.querySelector(`.chat-user[data-user-id="${id}"] .chat-user-last time`);
        return t && { text: t.textContent, datetime: t.getAttribute('datetime') };
    }, users.dana.id);
    check(last && last.datetime === newest.created_at && last.text === 'just now',
          'the members list shows when the last message with dana was', JSON.stringify(last));
}

/** Item 4: right-to-left text. */
async function rtl(b, users, arabic) {
    const dir = await b.evaluate((id) => {
        const li = document.querySelector(`.chat-conversation li[data-id="${id}"]`);
        const body = li?.querySelector('.chat-message-body');
        return body && { dir: body.dir, direction: getComputedStyle(body).direction, author: li.querySelector('.chat-message-author').dir };
    }, arabic.id);
    check(dir && dir.dir === 'auto' && dir.direction === 'rtl' && dir.author === 'auto',
          'an Arabic message is laid out right to left (dir=auto on the body and the name)', JSON.stringify(dir));
    const fields = await b.evaluate(() => ['#chat-input', '#chat-search', '.chat-user-name', '.chat-peer-name']
        .map((s) => `${s}: ${document.querySelector(s)?.dir}`));
    check(fields.every((f) => f.endsWith(': auto')), 'the composer, the search field, nicknames and the conversation\'s title have dir=auto', list(fields));
}

/** Item 7b: a draft per conversation and per room. */
async function drafts(b, users) {
    const { dana, carl } = users;
    await b.fill('#chat-input', 'half a thought for dana');
    await openWith(b, carl);
    await b.waitForSelector(`.chat-conversation[data-peer-id="${carl.id}"]`);
    const empty = await b.inputValue('#chat-input');
    await b.fill('#chat-input', 'for carl');
    await openRoom(b, LOBBY);
    await b.waitForSelector('#room-input');
    await b.fill('#room-input', 'for the lobby');
    await openWith(b, dana);
    await b.waitForSelector(`.chat-conversation[data-peer-id="${dana.id}"]`);
    const backDana = await b.inputValue('#chat-input');
    await openWith(b, carl);
    await b.waitForSelector(`.chat-conversation[data-peer-id="${carl.id}"]`);
    const backCarl = await b.inputValue('#chat-input');
    await openRoom(b, LOBBY);
    await b.waitForSelector('#room-input');
    const backLobby = await b.inputValue('#room-input');
    check(empty === '' && backDana === 'half a thought for dana' && backCarl === 'for carl' && backLobby === 'for the lobby',
          'each conversation and the lobby keep their own draft while another is open',
          JSON.stringify({ empty, backDana, backCarl, backLobby }));
    await b.fill('#room-input', '');
}

/** Item 10 and the regions: the phone panel is a modal dialog; Escape closes desktop views. */
async function dialog(b, users) {
    const regions = await b.getByRole('region', { name: 'Members', exact: true }).count();
    check(regions <= 1, 'no two regions are both named "Members"', `regions named Members: ${regions}`);

    // desktop: Escape closes the open room, then a conversation, the focus back on its row
    await b.focus('#room-input');
    await b.keyboard.press('Escape');
    const roomGone = await until(async () => await b.locator('.room-view').count() === 0);
    await openWith(b, users.carl);
    await b.focus('#chat-input');
    await b.keyboard.press('Escape');
    const convGone = await until(async () => await b.locator('.chat-conversation').count() === 0);
    const focusOn = await b.evaluate(() => document.activeElement?.closest('.chat-user')?.dataset.userId);
    check(roomGone && convGone && Number(focusOn) === users.carl.id,
          'on a desktop Escape closes the open room and the open conversation, the focus back on the member',
          JSON.stringify({ roomGone, convGone, focusOn }));

    await b.setViewportSize(PHONE);
    await b.click('.chat-toggle');
    const modal = await b.evaluate(() => {
        const chat = document.querySelector('.chat');
        const others = [...document.body.children].filter((el) => !el.contains(chat) && el.tagName !== 'SCRIPT');
        return {
            role: chat.getAttribute('role'),
            modal: chat.getAttribute('aria-modal'),
            inert: others.every((el) => el.inert),
        };
    });
    const named = await b.getByRole('dialog', { name: 'Messages' }).count();
    check(modal.role === 'dialog' && modal.modal === 'true' && modal.inert && named === 1,
          'on a phone the open chat panel is a modal dialog named "Messages", the page behind it inert', JSON.stringify({ ...modal, named }));
    let outside = 0;
    // from the first control (the Messages button) backwards, round to the last, then forwards round again
    for (let i = 0; i < 40; i++) {
        await b.keyboard.press(i < 5 ? 'Shift+Tab' : 'Tab');
        if (!await b.evaluate(() => document.querySelector('.chat').contains(document.activeElement)))
            outside += 1;
    }
    check(outside === 0, 'Tab and Shift+Tab keep the focus inside it', `outside ${outside} times in 40`);
    await b.keyboard.press('Escape');
    const closed = await b.evaluate(() => {
        const chat = document.querySelector('.chat');
        return { expanded: chat.dataset.expanded, role: chat.getAttribute('role'), inert: [...document.body.children].some((el) => el.inert),
            focus: document.activeElement?.className };
    });
    check(closed.expanded === 'false' && closed.role === null && !closed.inert && closed.focus === 'chat-toggle',
          'Escape closes it: no dialog, nothing inert, the focus back on the Messages button', JSON.stringify(closed));
    await b.setViewportSize(DESKTOP);
}

/** A member who never connected: the same presence in the feed's new members and the chat. */
async function neverConnected(b, e, users) {
    const erin = await register(e, users.base, 'erin');
    const both = await until(async () => b.evaluate((erin) => {
        const feed = [...document.querySelectorAll('.member-list .member')].find((li) => li.querySelector('.member-name')?.textContent === erin.nickname);
        const chat = document.querySelector(`.chat-user[data-user-id="${erin.id}"]`);
        if (!feed || !chat)
            return null;
        return { feed: feed.querySelector('.presence')?.dataset.online ?? 'none', chat: chat.dataset.online };
    }, erin));
    check(both && both.feed === 'false' && both.chat === 'false',
          'a member who registered and never connected is offline in both the new members panel and the chat list', JSON.stringify(both));
}

/** Relative times move on by themselves (a clock in the page that the test moves forward). */
async function liveTimes(f, users) {
    await f.clock.install();
    await f.goto(`${users.base}/`);
    await openWith(f, users.dana);
    const before = await until(() => f.evaluate(() => document.querySelector('.chat-conversation .chat-messages > li[data-id]:last-child time')?.textContent));
    await f.clock.fastForward('05:00');
    const after = await until(() => f.evaluate(() => {
        const text = document.querySelector('.chat-conversation .chat-messages > li[data-id]:last-child time')?.textContent;
        return /min/.test(text ?? '') && text;
    }));
    check(before === 'just now' && after && /5 min/.test(after), 'five minutes later the same message says "5 min. ago", without a reload',
          JSON.stringify({ before, after }));
}

async function run(base, browser) {
    const b = await newPage(browser, DESKTOP);
    const c = await newPage(browser, DESKTOP);
    const d = await newPage(browser, DESKTOP);
    const e = await newPage(browser, DESKTOP);
    const t = await newPage(browser, TALL);
    const watchers = [watch(b, 'ben'), watch(t, 'ben (tall)')];
    const users = { base };
    users.ben = await register(b, base, 'ben');
    users.carl = await register(c, base, 'carl');
    users.dana = await register(d, base, 'dana');
    await t.context().addCookies(await b.context().cookies());
    for (const page of [c, d, e])
        await page.goto(`${base}/favicon.svg`);

    // 30 read messages from carl, 30 in the lobby
    const sent = await wsSend(c, [...many(30, 'carl says', users.ben.id), ...Array.from({ length: 30 }, (_, i) => ({ room: LOBBY, body: `lobby ${i + 1}` }))]);
    const lastCarl = sent[29];
    let res = await b.context().request.post(`${base}/api/messages/${users.carl.id}/read`, { data: { up_to: lastCarl.id } });
    if (res.status() !== 204)
        throw new Error(`read: ${res.status()}`);
    res = await b.context().request.post(`${base}/api/rooms/${LOBBY}/read`, { data: { up_to: sent.at(-1).id } });
    await tenOnly(t, users);

    await b.goto(`${base}/`);
    await b.waitForSelector(`.chat-user[data-user-id="${users.dana.id}"]`);
    await wsSend(d, many(23, 'unread', users.ben.id));
    await unread(b, users);
    const [links, arabic] = await wsSend(d, [
        { to: users.ben.id, body: 'see https://example.org/wiki/a_(b)). or http://example.com/x?y=1, not javascript:alert(1) nor <b>bold</b>' },
        { to: users.ben.id, body: 'مرحبا، كيف حالك؟' },
    ]);
    await until(async () => (await shownIds(b, '.chat-conversation')).includes(arabic.id));
    await reads(b, users, links, arabic);
    await rtl(b, users, arabic);
    await drafts(b, users);
    await dialog(b, users);
    await b.goto(`${base}/`);
    await b.waitForSelector(`.chat-user[data-user-id="${users.dana.id}"]`);
    await neverConnected(b, e, users);

    const f = await newPage(browser, DESKTOP);
    await f.context().addCookies(await b.context().cookies());
    await liveTimes(f, users);

    const problems = watchers.flatMap((w) => w.problems());
    check(problems.length === 0, 'no console errors, page errors or failed requests', list(problems));
}

process.exit(await runTests('polish.mjs', run, { timeoutMs: 120_000 }));
