/*
 * Browser test of the chat: two members in two browser contexts (zack and bob) and two who never
 * wrote (anna and Bert, until they do, over their own WebSockets). The members list and its order,
 * live reordering, a message arriving with its sender and date, the unread badge and the notice,
 * typing both ways, history loaded ten at a time while scrolling up, and messages sent while the
 * connection is down (and while its acknowledgement is lost) arriving exactly once; the search by
 * nickname, and the next page of members loaded when the list is scrolled to its end. TAP on stdout.
 *
 *   node t/browser/chat.mjs https://127.0.0.1:PORT
 *
 * FORUMD_SCREENSHOT_DIR=DIR also saves screenshots of the chat at desktop and phone width.
 */
import { check, list, newPage, overflow, runTests, watch } from './lib.mjs';
import { countBody, listNames, openWith, register, serverUsers, shownMessages, typingShown, until, userState } from './chatlib.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const LIVE_MS = 5_000;
const RECONNECT_MS = 15_000;

const tag = `${process.pid % 1000}${Date.now() % 100_000}`;
const nick = (name) => `${name}_${tag}`;
const ZACK = nick('zack');
const BOB = nick('bob');
const ANNA = nick('anna');
const BERT = nick('Bert');
const CARLA = nick('carla');

/**
 * Sends messages over a WebSocket of the page's own (the page shows a plain file of the site, so
 * no app runs in it), each after the acknowledgement of the one before; returns the stored messages.
 */
function wsSend(page, to, bodies) {
    return page.evaluate(async ({ to, bodies }) => {
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
        for (const [i, body] of bodies.entries()) {
            const clientId = `test-${Date.now()}-${i}`;
            ws.send(JSON.stringify({ type: 'message.send', to, body, client_id: clientId }));
            out.push((await next((f) => f.type === 'message' && f.message.client_id === clientId)).message);
        }
        ws.close();
        return out;
    }, { to, bodies });
}

// --- what a page shows ---

const noticeText = (page, id) => page.evaluate((id) => {
    const el = document.querySelector(`.chat-notices[role="status"] .chat-notice[data-user-id="${id}"]`);
    return el ? el.textContent : null;
}, id);

const pendingShown = (page) => page.$$eval('.chat-conversation .chat-pending > li', (els) =>
    els.map((li) => `${li.dataset.pending}: ${li.querySelector('.chat-message-body').textContent} (${li.querySelector('.chat-message-state').textContent})`));

async function shots(page, name) {
    const dir = process.env.FORUMD_SCREENSHOT_DIR;
    if (dir)
        await page.screenshot({ path: `${dir}/${name}-desktop.png` });
    const size = page.viewportSize();
    await page.setViewportSize(PHONE);
    await page.click('.chat-toggle');
    await page.waitForTimeout(200);
    const extra = await overflow(page);
    check(extra <= 0, `${name}: the open chat panel fits a 360 px screen without sideways scrolling`, `overflow: ${extra}px`);
    if (dir) {
        await page.screenshot({ path: `${dir}/${name}-phone.png` });
        console.log(`# screenshots: ${dir}/${name}-{desktop,phone}.png`);
    }
    await page.click('.chat-toggle');
    await page.setViewportSize(size);
}

// --- the steps ---

async function usersList(b, users) {
    const { zack, anna, bert } = users;
    const first = await until(async () => {
        const names = await listNames(b);
        return names.length === 3 && names;
    });
    check(JSON.stringify(first) === JSON.stringify([ANNA, BERT, ZACK]),
          'before any message the list is everyone else by nickname, A→Z whatever the case', `list: ${first}`);
    const zackState = await until(async () => {
        const state = await userState(b, zack.id);
        return state?.online === 'true' && state;
    });
    const others = [await userState(b, anna.id), await userState(b, bert.id)];
    check(zackState && others.every((s) => s.online === 'false'), 'zack (signed in) is marked online, anna and Bert offline',
          JSON.stringify({ zackState, others }));
}

async function search(b) {
    const box = b.getByRole('searchbox', { name: 'Search members by nickname' });
    check(await box.isVisible(), 'a search field with an accessible name sits above the members list');
    const shows = async (text, expected) => {
        await box.fill(text);
        const names = await until(async () => {
            const now = await listNames(b);
            return JSON.stringify(now) === JSON.stringify(expected) && now;
        });
        return names || await listNames(b);
    };
    let got = await shows('aNn', [ANNA]);
    check(JSON.stringify(got) === JSON.stringify([ANNA]), 'typing "aNn" keeps anna: nicknames that start with it, whatever the case',
          `list: ${got}`);
    got = await shows('b', [BERT]);
    check(JSON.stringify(got) === JSON.stringify([BERT]), '"b" keeps Bert (bob is the reader)', `list: ${got}`);
    got = await shows('_', []);
    const status = await b.locator('.chat-users-status').textContent();
    check(got.length === 0 && status.includes('“_”'), '"_" is an underscore, not any character: nobody, and the list says so',
          `list: ${got}; status: ${status}`);
    await box.press('Escape');
    got = await until(async () => {
        const now = await listNames(b);
        return now.length === 3 && now;
    });
    check(JSON.stringify(got) === JSON.stringify([ANNA, BERT, ZACK]) && await box.inputValue() === '',
          'Escape clears the search and brings everyone back', `list: ${got}`);
}

async function firstMessage(a, b, users) {
    const { zack, bob } = users;
    await openWith(a, bob);
    await a.waitForSelector('.chat-conversation .chat-log-status[data-state="start"]');
    const empty = await a.textContent('.chat-log-status');
    check(/No messages yet/.test(empty), 'zack opens an empty conversation with bob', `status: ${empty}`);

    const body = 'Hello bob, are you there?';
    const sentAt = Date.now();
    await a.fill('#chat-input', body);
    await a.press('#chat-input', 'Enter');

    const moved = await until(async () => (await listNames(b))[0] === ZACK);
    check(moved, 'a message moves zack to the top of bob\'s list, live', `list: ${await listNames(b)}`);
    const badge = await until(async () => (await userState(b, zack.id))?.badge === '1');
    check(badge, 'with an unread badge of 1 on zack', JSON.stringify(await userState(b, zack.id)));
    const notice = await until(() => noticeText(b, zack.id));
    check(notice && notice.includes(ZACK) && notice.includes(body), 'and a notice (role=status) naming zack, with the start of the message',
          `notice: ${notice}`);
    check(Date.now() - sentAt < 3_000, 'in real time', `${Date.now() - sentAt} ms`);
    await b.click(`.chat-notice[data-user-id="${zack.id}"] .chat-notice-close`);
    check(await noticeText(b, zack.id) === null, 'the notice\'s close button dismisses it');

    const own = await until(async () => (await shownMessages(a)).find((m) => m.body === body));
    const pending = await pendingShown(a);
    check(own && own.author === ZACK && pending.length === 0, 'zack\'s own copy replaces the pending one in his conversation',
          JSON.stringify({ own, pending }));

    await openWith(b, zack);
    const shown = await until(async () => (await shownMessages(b)).find((m) => m.body === body));
    const stored = (await (await b.context().request.get(`${users.base}/api/messages/${zack.id}`)).json()).messages.at(-1);
    const year = String(new Date(stored.created_at).getFullYear());
    check(shown && shown.author === ZACK && shown.datetime === stored.created_at && /^(just now|\d+ min)/.test(shown.time)
          && shown.title.includes(year) && /\d:\d\d/.test(shown.title),
          'bob opens it: the message shows zack\'s name, how long ago it was sent, and the date and time on hover', JSON.stringify({ shown, stored }));
    const cleared = await until(async () => (await userState(b, zack.id))?.badge === '');
    check(cleared, 'opening the conversation clears the badge', JSON.stringify(await userState(b, zack.id)));
    const serverUnread = await until(async () => (await serverUsers(b, users.base)).find((u) => u.id === zack.id).unread === 0);
    check(serverUnread, 'and marks it read on the server (unread 0 in GET /api/users)');
}

/** zack's typing frames (recorded by his route) from index `from` on, as {at, active}. */
const typingFrames = (aNet, from = 0) => aNet.typing.slice(from);

async function typing(a, b, users, aNet) {
    const { zack } = users;
    const startFrames = aNet.typing.length;
    await a.focus('#chat-input');
    await a.keyboard.type('I am typ', { delay: 40 });
    const shown = await until(() => typingShown(b), 3_000);
    check(shown && shown.includes(ZACK) && /is typing/.test(shown), 'while zack types, bob sees "zack is typing"', `indicator: ${shown}`);
    const dots = await b.$$eval('.chat-typing .chat-dots span', (els) => els.map((el) => getComputedStyle(el).animationName));
    check(dots.length === 3 && dots.every((n) => n === 'chat-dot'), 'with three animated dots', `animations: ${dots}`);

    // zack keeps typing for longer than the 6 s a single typing frame lasts: the indicator must hold
    let gaps = 0;
    let samples = 0;
    for (let i = 0; i < 24; i++) {
        await a.keyboard.type(i % 2 ? 'a' : 'b');
        for (let j = 0; j < 3; j++) {
            samples += 1;
            if (!await typingShown(b))
                gaps += 1;
            await b.waitForTimeout(100);
        }
    }
    check(gaps === 0, `it stays up without flickering while he keeps typing (${samples} samples over 8 s)`, `hidden in ${gaps} samples`);
    const listTyping = await b.isVisible(`.chat-user[data-user-id="${zack.id}"] .chat-user-typing`);
    check(listTyping, 'and the members list says "typing…" next to zack');
    const refreshes = typingFrames(aNet, startFrames);
    const spacing = refreshes.slice(1).map((f, i) => f.at - refreshes[i].at);
    check(refreshes.length >= 3 && refreshes.every((f) => f.active) && spacing.every((ms) => ms >= 2_900),
          'his page sent active:true again while he typed, at most every 3 s', `gaps between frames: ${spacing.join(', ')} ms`);

    const beforeSend = aNet.typing.length;
    await a.keyboard.press('Enter');
    const sentAt = Date.now();
    const gone = await until(async () => !await typingShown(b), 2_000);
    check(gone && Date.now() - sentAt < 1_500, 'sending the message hides it at once', `after ${Date.now() - sentAt} ms`);
    const onSend = typingFrames(aNet, beforeSend);
    check(onSend.length === 1 && onSend[0].active === false && onSend[0].at - sentAt < 1_000, 'and his page sent active:false on sending',
          JSON.stringify(onSend));
    const noNotice = await noticeText(b, zack.id);
    const noBadge = (await userState(b, zack.id)).badge;
    check(noNotice === null && noBadge === '', 'a message for the conversation on screen raises no notice and no badge',
          JSON.stringify({ noNotice, noBadge }));

    const beforeIdle = aNet.typing.length;
    await a.keyboard.type('one more', { delay: 30 });
    const lastKey = Date.now();
    const again = await until(() => typingShown(b), 3_000);
    await b.waitForTimeout(2_500);
    const still = await typingShown(b);
    const hidden = await until(async () => !await typingShown(b), 6_000, 100);
    const after = Date.now() - lastKey;
    const idle = typingFrames(aNet, beforeIdle);
    const stop = idle.find((f) => !f.active);
    check(again && still && stop && stop.at - lastKey >= 4_500 && stop.at - lastKey <= 6_000,
          'when zack stops typing, his page sends active:false after 5 s idle', `frames: ${JSON.stringify(idle.map((f) => ({ ...f, at: f.at - lastKey })))}`);
    check(hidden && after >= 4_500 && after <= 6_500, 'and bob\'s indicator goes then, not before', `hidden ${after} ms after the last key`);

    // the stop is lost on the way: bob's page hides the indicator by itself 6 s after the last active:true
    aNet.dropStop = true;
    const beforeLost = aNet.typing.length;
    await a.keyboard.type('x');
    await until(() => typingShown(b), 3_000);
    await a.click('.chat-peer-name');
    const lastTrue = typingFrames(aNet, beforeLost).find((f) => f.active)?.at ?? Date.now();
    await b.waitForTimeout(Math.max(0, lastTrue + 4_000 - Date.now()));
    const held = await typingShown(b);
    const expired = await until(async () => !await typingShown(b), 4_000, 100);
    const lasted = Date.now() - lastTrue;
    aNet.dropStop = false;
    check(held && expired && lasted >= 5_500 && lasted <= 7_000, 'without his active:false, bob\'s page hides it 6 s after the last active:true',
          `hidden after ${lasted} ms`);

    // the other way round, and a blur ends it at once
    await b.focus('#chat-input');
    await b.keyboard.type('bob types back', { delay: 30 });
    const back = await until(() => typingShown(a), 3_000);
    check(back && back.includes(BOB), 'zack sees "bob is typing" while bob types', `indicator: ${back}`);
    await b.click('.chat-peer-name');
    const blurredAt = Date.now();
    const off = await until(async () => !await typingShown(a), 2_000);
    check(off && Date.now() - blurredAt < 1_500, 'and it goes at once when bob leaves the field', `after ${Date.now() - blurredAt} ms`);
    await b.fill('#chat-input', '');
    await a.fill('#chat-input', '');
    await a.click('.chat-peer-name');
}

async function reorderAndNotices(a, b, d, e, users) {
    const { bert, base } = users;
    await wsSend(d, users.bob.id, ['Hi bob, Bert here.']);
    const top = await until(async () => (await listNames(b))[0] === BERT);
    check(top, 'a message from Bert moves him to the top of bob\'s list', `list: ${await listNames(b)}`);
    const badge = await until(async () => (await userState(b, bert.id))?.badge === '1');
    const notice = await until(() => noticeText(b, bert.id));
    const shownAt = Date.now();
    check(badge && notice && notice.includes(BERT), 'Bert gets a badge and a notice while bob reads zack\'s conversation', `notice: ${notice}`);

    // a screenshot with everything at once: the open conversation, zack typing, Bert's notice
    await a.focus('#chat-input');
    await a.keyboard.type('Look at', { delay: 30 });
    await until(() => typingShown(b), 3_000);
    await shots(b, 'chat');
    await a.fill('#chat-input', '');
    await a.click('.chat-peer-name');

    const carla = await register(e, base, CARLA);
    users.carla = carla;
    const joined = await until(async () => {
        const names = await listNames(b);
        return names.length === 4 && names;
    });
    check(JSON.stringify(joined) === JSON.stringify([BERT, ZACK, ANNA, CARLA]),
          'carla registers: she joins bob\'s list live, in nickname order after the conversations', `list: ${joined}`);
    const server = (await serverUsers(b, base)).map((u) => u.nickname);
    check(JSON.stringify(joined) === JSON.stringify(server), 'the list is in exactly the server\'s order',
          `page: ${joined}\nserver: ${server}`);

    const hidden = await until(async () => await noticeText(b, bert.id) === null, 10_000, 100);
    const after = Date.now() - shownAt;
    check(hidden && after <= 9_000, 'Bert\'s notice hides itself after a few seconds', `after ${after} ms`);
}

async function history(b, c, users, hist) {
    const { anna, bob } = users;
    const sent = await wsSend(c, bob.id, Array.from({ length: 25 }, (_, i) => `History message ${i + 1}`));
    const top = await until(async () => (await listNames(b))[0] === ANNA && (await userState(b, anna.id)).badge === '25');
    check(top, 'anna sends bob 25 messages: she moves to the top with a badge of 25', JSON.stringify(await userState(b, anna.id)));
    const notice = await noticeText(b, anna.id);
    check(notice && notice.includes(ANNA) && /25 messages/.test(notice), 'one notice for her, counting them', `notice: ${notice}`);

    // opened with 25 unread, it starts at the first of them; read to the end, then opened again,
    // it shows the newest page only (t/66 checks the unread part)
    await openWith(b, anna);
    const fromFirst = await until(async () => (await shownMessages(b)).length === 25
        && await b.evaluate(() => document.querySelector('.chat-conversation .chat-new-line')?.nextElementSibling?.dataset.id), LIVE_MS);
    check(Number(fromFirst) === sent[0].id, 'opening it shows all 25 unread from the first, under a "New messages" line', `first after the line: ${fromFirst}`);
    await b.evaluate(() => {
        const log = document.querySelector('.chat-log');
        log.scrollTop = log.scrollHeight;
    });
    await until(async () => (await serverUsers(b, users.base)).find((u) => u.id === anna.id).unread === 0);
    await openWith(b, users.zack);
    await b.waitForSelector(`.chat-conversation[data-peer-id="${users.zack.id}"]`);
    hist.urls.length = 0;
    await openWith(b, anna);
    const ten = await until(async () => (await shownMessages(b)).length === 10 && await b.evaluate(() => {
        const log = document.querySelector('.chat-log');
        return Math.abs(log.scrollHeight - log.clientHeight - log.scrollTop) < 2;
    }));
    const first = await shownMessages(b);
    check(ten && JSON.stringify(first.map((m) => m.id)) === JSON.stringify(sent.slice(15).map((m) => m.id)),
          'opening it shows the newest 10, scrolled to the newest', `ids: ${first.map((m) => m.id)}`);
    check(first.every((m) => m.author === ANNA && m.datetime), 'each with anna\'s name and its date and time');

    const anchorAt = (id) => b.evaluate((id) => {
        const log = document.querySelector('.chat-log');
        return log.querySelector(`[data-id="${id}"]`).getBoundingClientRect().top - log.getBoundingClientRect().top;
    }, id);
    const before = hist.urls.filter((u) => u.includes('before=')).length;
    for (const [want, oldest] of [[20, sent[15].id], [25, sent[5].id]]) {
        // a fling to the top: many scroll events at once must fetch one page, not many; where the
        // oldest message is, measured before any answer can have come
        const y0 = await b.evaluate((id) => {
            const log = document.querySelector('.chat-log');
            for (let i = 0; i < 40; i++) {
                log.scrollTop = i % 2;
                log.dispatchEvent(new Event('scroll'));
            }
            return log.querySelector(`[data-id="${id}"]`).getBoundingClientRect().top - log.getBoundingClientRect().top;
        }, oldest);
        const grew = await until(async () => (await shownMessages(b)).length === want);
        await b.waitForTimeout(300); // room for a second request, if the throttle let one through
        const y1 = await anchorAt(oldest);
        const pages = hist.urls.filter((u) => u.includes('before=')).length - before;
        check(grew && pages === (want === 20 ? 1 : 2), `scrolling to the top loads ${want - (want === 20 ? 10 : 20)} older: ${want} shown, one request for the fling`,
              `shown: ${(await shownMessages(b)).length}; requests with before=: ${pages}`);
        check(Math.abs(y1 - y0) <= 2, `the message that was at the top stays where it was (${Math.round(y0)} px → ${Math.round(y1)} px)`);
    }
    const all = await shownMessages(b);
    const ids = all.map((m) => m.id);
    check(new Set(ids).size === 25 && JSON.stringify(ids) === JSON.stringify(sent.map((m) => m.id)),
          'all 25, each once, oldest first', `ids: ${ids}`);
    const start = await b.textContent('.chat-log-status');
    await b.evaluate(() => {
        const log = document.querySelector('.chat-log');
        log.scrollTop = 0;
        log.dispatchEvent(new Event('scroll'));
    });
    await b.waitForTimeout(300);
    const extra = hist.urls.filter((u) => u.includes('before=')).length - before;
    check(/start of your conversation/.test(start) && extra === 2, 'at the start it says so and asks for nothing more',
          `status: ${start}; requests: ${extra}`);
    check(hist.max === 1, 'never more than one history request at a time', `at most ${hist.max}`);
}

async function offline(a, b, users, net) {
    const { zack, bob } = users;
    await openWith(b, zack);
    await b.waitForSelector('.chat-conversation[data-peer-id] .chat-log-status[data-state="start"]');
    const onlineBefore = await b.textContent('footer .connection');

    net.cut = true;
    // a cut network ends both sides: a server side left open would still get bob's frames, and whichever
    // copy came first decided the lost-acknowledgement check below (a page may close with 1000 only)
    net.current.ws.close({ code: 1001, reason: 'the test cuts the network' });
    net.current.server.close({ code: 1000, reason: 'the test cuts the network' });
    const down = await until(async () => await b.textContent('footer .connection') !== 'online');
    check(onlineBefore === 'online' && down, 'bob\'s connection is cut: the footer no longer says online');

    const mine = 'Sent while the connection was down';
    await b.fill('#chat-input', mine);
    await b.press('#chat-input', 'Enter');
    const theirs = 'Written to bob while he was away';
    await a.fill('#chat-input', theirs);
    await a.press('#chat-input', 'Enter');
    await b.waitForTimeout(1_000);
    const queued = await pendingShown(b);
    check(queued.length === 1 && queued[0] === `sending: ${mine} (sending…)`, 'bob\'s message waits, shown as "sending…"', list(queued));
    check(await countBody(a, mine) === 0, 'and has not reached zack');

    const urlsBefore = net.urls.length;
    net.cut = false;
    const back = await until(async () => await b.textContent('footer .connection') === 'online', RECONNECT_MS);
    check(back, 'the connection comes back by itself');
    const resumed = net.urls.slice(urlsBefore).at(-1) ?? '';
    check(/\/ws\?after=[1-9]\d*$/.test(resumed), 'resuming after the last message id seen', `url: ${resumed}`);
    const arrived = await until(async () => await countBody(a, mine) === 1, LIVE_MS);
    const sentAgain = await until(async () => await countBody(b, mine) === 1 && (await pendingShown(b)).length === 0);
    const missed = await until(async () => await countBody(b, theirs) === 1);
    await b.waitForTimeout(1_000);
    check(arrived && await countBody(a, mine) === 1, 'on reconnecting it is sent: zack gets it exactly once');
    check(sentAgain && await countBody(b, mine) === 1, 'bob\'s "sending…" item is replaced by the acknowledged message',
          list(await pendingShown(b)));
    check(missed && await countBody(b, theirs) === 1, 'and the message zack wrote meanwhile reaches bob, once');

    // the message reaches the server but its acknowledgement is lost with the connection
    const lost = 'Acknowledgement lost on the way';
    net.dropAck = true;
    await b.fill('#chat-input', lost);
    await b.press('#chat-input', 'Enter');
    await until(() => net.ackDropped);
    const waiting = await pendingShown(b);
    check(net.ackDropped && waiting.length === 1 && waiting[0].startsWith('sending:'),
          'a message whose acknowledgement is lost stays "sending…"', list(waiting));
    await b.waitForTimeout(500);
    net.cut = false;
    await until(async () => await b.textContent('footer .connection') === 'online', RECONNECT_MS);
    const settled = await until(async () => await countBody(b, lost) === 1 && (await pendingShown(b)).length === 0, LIVE_MS);
    await b.waitForTimeout(1_000);
    const sends = net.sent.filter((f) => f.body === lost);
    check(settled && await countBody(b, lost) === 1 && await countBody(a, lost) === 1,
          'after the reconnect it shows once on both sides', `bob: ${await countBody(b, lost)}; zack: ${await countBody(a, lost)}`);
    check(sends.length >= 2 && new Set(sends.map((f) => f.client_id)).size === 1,
          'it was sent again with the same client_id, which the server stored once',
          `sends: ${sends.length}; client_ids: ${[...new Set(sends.map((f) => f.client_id))]}`);
    const stored = (await (await b.context().request.get(`${users.base}/api/messages/${zack.id}?limit=50`)).json()).messages;
    check(stored.filter((m) => m.body === lost).length === 1 && stored.filter((m) => m.body === mine).length === 1,
          'the server holds each of them once');
}

/** Past one page of members: the list loads the next page when its end is scrolled into view. */
async function pages(b, e, users) {
    const extra = [];
    for (let i = 0; i < 60; ++i)
        extra.push(await register(e, users.base, nick(`m${String(i).padStart(2, '0')}`)));
    const all = [];
    for (let after = null; ;) {
        const res = await b.context().request.get(`${users.base}/api/users?limit=200${after ? `&after=${after}` : ''}`);
        const json = await res.json();
        all.push(...json.users.map((u) => u.nickname));
        if (!(after = json.next))
            break;
    }
    const seen = new Set();
    const urls = [];
    const onRequest = (req) => {
        if (new URL(req.url()).pathname === '/api/users')
            urls.push(req.url());
    };
    b.on('request', onRequest);
    await b.reload();
    const firstPage = await until(async () => {
        const n = (await listNames(b)).length;
        return n >= 50 && n;
    });
    check(firstPage === 50 && await b.locator('.chat-more').isVisible(),
          'with 64 other members the list shows the first 50 and a "More members" button', `shown: ${firstPage}`);
    await b.locator('.chat-users').evaluate((el) => {
        el.scrollTop = el.scrollHeight;
    });
    const shown = await until(async () => {
        const names = await listNames(b);
        return names.length === all.length && names;
    });
    (shown || []).forEach((n) => seen.add(n));
    check(JSON.stringify(shown) === JSON.stringify(all) && seen.size === all.length,
          'scrolling to the end loads the rest: everyone once, in the server\'s order', `shown ${shown?.length} of ${all.length}`);
    check(await b.locator('.chat-more').isHidden(), 'and the button goes once everything is loaded');
    check(urls.some((u) => u.includes('after=')), 'the next page was asked for with the server\'s cursor', urls.join(' '));
    b.off('request', onRequest);
    return extra;
}

async function run(base, browser) {
    const a = await newPage(browser, DESKTOP);
    const b = await newPage(browser, DESKTOP);
    const c = await newPage(browser, DESKTOP);
    const d = await newPage(browser, DESKTOP);
    const e = await newPage(browser, DESKTOP);
    const watchers = [watch(a, 'zack'), watch(b, 'bob'), watch(c, 'anna'), watch(d, 'Bert'), watch(e, 'carla')];
    const users = { base };
    users.zack = await register(a, base, ZACK);
    users.bob = await register(b, base, BOB);
    users.anna = await register(c, base, ANNA);
    users.bert = await register(d, base, BERT);

    // bob's live connection goes through the test, which can cut it or lose a frame on the way
    const net = { cut: false, dropAck: false, ackDropped: false, urls: [], sent: [], current: null };
    await b.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        net.urls.push(ws.url());
        if (net.cut) {
            ws.close({ code: 1001, reason: 'the test cuts the network' });
            return;
        }
        const server = ws.connectToServer();
        net.current = { ws, server };
        ws.onMessage((data) => {
            const frame = JSON.parse(data);
            if (frame.type === 'message.send')
                net.sent.push(frame);
            server.send(data);
        });
        server.onMessage((data) => {
            const frame = JSON.parse(data);
            if (net.dropAck && frame.type === 'message' && frame.message?.client_id) {
                net.dropAck = false;
                net.ackDropped = true;
                net.cut = true;
                ws.close({ code: 1001, reason: 'the test loses the acknowledgement' });
                server.close({ code: 1000, reason: 'the test loses the acknowledgement' });
                return;
            }
            ws.send(data);
        });
    });
    // zack's connection goes through the test too, untouched, so it can see his typing frames (or
    // lose his active:false on purpose)
    const aNet = { typing: [], dropStop: false };
    await a.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        const server = ws.connectToServer();
        ws.onMessage((data) => {
            const frame = JSON.parse(data);
            if (frame.type === 'typing') {
                aNet.typing.push({ at: Date.now(), active: frame.active });
                if (!frame.active && aNet.dropStop)
                    return;
            }
            server.send(data);
        });
    });
    // bob's requests for the history with anna, and how many were on their way at once
    const hist = { urls: [], inFlight: 0, max: 0 };
    const ofHistory = (req) => new URL(req.url()).pathname === `/api/messages/${users.anna.id}`;
    b.on('request', (req) => {
        if (ofHistory(req)) {
            hist.urls.push(req.url());
            hist.max = Math.max(hist.max, ++hist.inFlight);
        }
    });
    const done = (req) => {
        if (ofHistory(req))
            hist.inFlight -= 1;
    };
    b.on('requestfinished', done);
    b.on('requestfailed', done);

    await a.goto(`${base}/`);
    await b.goto(`${base}/`);
    for (const [i, page] of [c, d, e].entries()) {
        watchers[2 + i].expectHttpError('/favicon.ico', 404); // Chromium asks for one for a plain file
        await page.goto(`${base}/favicon.svg`);
    }
    const shown = await a.locator('.site-aside .chat-title').isVisible() && await b.locator('.site-aside .chat-title').isVisible();
    check(shown, 'signed in, the chat column is on the page beside the forum');

    await usersList(b, users);
    await search(b);
    await firstMessage(a, b, users);
    await typing(a, b, users, aNet);
    await reorderAndNotices(a, b, d, e, users);
    await history(b, c, users, hist);
    await offline(a, b, users, net);

    await pages(b, e, users);

    await b.getByRole('button', { name: 'Log out' }).click();
    await b.waitForSelector('#login-form');
    const asideGone = await b.locator('.site-aside').isHidden();
    const sidebarEmpty = await b.$$eval('.site-aside *', (els) => els.length);
    check(asideGone && sidebarEmpty === 0, 'logging out takes the chat away', `hidden: ${asideGone}; elements left: ${sidebarEmpty}`);

    const problems = watchers.flatMap((w) => w.problems());
    check(problems.length === 0, 'no console errors, page errors or failed requests', list(problems));
}

process.exit(await runTests('chat.mjs', run, { timeoutMs: 150_000 }));
