/*
 * Browser test of the lobby and the public rooms: three members (ann, ben, cat) in three browser
 * contexts, and five more (the seeders) who wrote the lobby's history over sockets of their own.
 * The rooms list (the lobby first), the lobby's history ten at a time while scrolling up, live
 * messages with their senders between the three, typing both ways (one, two and several typists),
 * creating a room (a short name and a taken name refused with their reasons), joining it and
 * leaving it with the member counts following live, a mention badge and the highlighted mention, a
 * rate-limited send that keeps its text, a cut connection that resumes after the last id (room
 * messages included) and shows nothing twice, the keyboard, the phone layout, and the names and
 * live regions a screen reader relies on. TAP on stdout.
 *
 *   node t/browser/rooms.mjs https://127.0.0.1:PORT
 *
 * The server must be fresh, hash passwords cheaply and limit room messages to a burst of 8 with a
 * slow refill (t/65-browser-rooms.t). FORUMD_SCREENSHOT_DIR=DIR also saves screenshots.
 */
import { check, focused, list, newPage, overflow, runTests, watch } from './lib.mjs';
import { register, until } from './chatlib.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const LIVE_MS = 5_000;
const RECONNECT_MS = 15_000;
const BURST = 8; // rooms.rate-burst in t/65-browser-rooms.t
const LOBBY = 1;

const tag = `${process.pid % 1000}${Date.now() % 100_000}`;
const nick = (name) => `${name}_${tag}`;
const ANN = nick('ann');
const BEN = nick('ben');
const CAT = nick('cat');
const ROOM = `Book club ${tag}`;

/**
 * Opens a WebSocket of the page's own (the page shows a plain file of the site, so no app runs in
 * it) as window.testSocket, with the frames it receives in window.testFrames.
 */
function socketOpen(page) {
    return page.evaluate(async () => {
        window.testSocket?.close();
        const ws = new WebSocket(`wss://${location.host}/ws`);
        window.testSocket = ws;
        window.testFrames = [];
        ws.onmessage = (event) => window.testFrames.push(JSON.parse(event.data));
        for (let waited = 0; waited < 10_000; waited += 50) {
            if (window.testFrames.some((f) => f.type === 'hello'))
                return true;
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
        throw new Error('no hello on the test socket');
    });
}

/** Sends room messages over the page's test socket, each after the acknowledgement of the one before. */
function socketSay(page, room, bodies) {
    return page.evaluate(async ({ room, bodies }) => {
        const out = [];
        for (const [i, body] of bodies.entries()) {
            const clientId = `test-${Date.now()}-${i}`;
            window.testSocket.send(JSON.stringify({ type: 'room.send', room, body, client_id: clientId }));
            let frame = null;
            for (let waited = 0; !frame && waited < 10_000; waited += 50) {
                frame = window.testFrames.find((f) => (f.type === 'room.message' && f.message.client_id === clientId) || (f.type === 'error' && f.ref === clientId));
                if (!frame)
                    await new Promise((resolve) => setTimeout(resolve, 50));
            }
            if (!frame || frame.type === 'error')
                throw new Error(`room.send refused: ${JSON.stringify(frame)}`);
            out.push(frame.message);
        }
        return out;
    }, { room, bodies });
}

const socketFrame = (page, frame) => page.evaluate((frame) => window.testSocket.send(JSON.stringify(frame)), frame);

// --- what a page shows ---

const roomNames = (page) => page.$$eval('.room-list .room-item', (els) => els.map((el) => el.querySelector('.chat-user-name').textContent));

const roomRow = (page, id) => page.evaluate((id) => {
    const li = document.querySelector(`.room-item[data-room-id="${id}"]`);
    if (!li)
        return null;
    const [mentions, unread] = [li.querySelector('.room-mention-badge'), li.querySelector('.chat-badge:not(.room-mention-badge)')];
    // what is seen: the badge without the words for screen readers
    const seen = (el) => [...el.childNodes].filter((n) => !n.classList?.contains('chat-sr-only')).map((n) => n.textContent).join('');
    return {
        name: li.querySelector('.chat-user-name').textContent,
        joined: li.dataset.joined,
        unread: unread.hidden ? '' : seen(unread),
        mentions: mentions.hidden ? '' : seen(mentions),
        typing: !li.querySelector('.chat-user-typing').hidden,
        label: li.querySelector('button').textContent,
    };
}, id);

const openRoom = (page, id) => page.click(`.room-item[data-room-id="${id}"] .chat-user-button`);

/** The messages of the open room: [{id, author, body, mention, marked}] in page order. */
const shown = (page) => page.$$eval('.room-view .chat-messages > li[data-id]', (els) => els.map((li) => ({
    id: Number(li.dataset.id),
    author: li.querySelector('.chat-message-author')?.textContent,
    body: li.querySelector('.chat-message-body')?.textContent,
    mention: li.dataset.mention,
    marked: [...li.querySelectorAll('mark.room-mention')].map((m) => m.textContent),
})));

const countBody = async (page, body) => (await shown(page)).filter((m) => m.body === body).length;

const typingLine = (page) => page.evaluate(() => {
    const el = document.querySelector('.room-view .chat-typing');
    return el && el.dataset.active === 'true' && el.checkVisibility() ? el.textContent : null;
});

const roomHead = (page) => page.evaluate(() => {
    const view = document.querySelector('.room-view');
    return view ? { name: view.querySelector('#room-title').textContent, meta: view.querySelector('.room-meta').textContent } : null;
});

async function say(page, body) {
    await page.fill('#room-input', body);
    await page.press('#room-input', 'Enter');
}

async function serverRoom(page, base, id) {
    const res = await page.context().request.get(`${base}/api/rooms?limit=100`);
    return (await res.json()).rooms.find((r) => r.id === id);
}

async function serverMessages(page, base, id) {
    const res = await page.context().request.get(`${base}/api/rooms/${id}/messages?limit=50`);
    return (await res.json()).messages;
}

async function shot(page, name) {
    const dir = process.env.FORUMD_SCREENSHOT_DIR;
    if (dir)
        await page.screenshot({ path: `${dir}/${name}.png` });
}

/** WCAG contrast of two computed colours ("rgb(r, g, b)"). */
function contrast(fg, bg) {
    const lum = (c) => {
        const [r, g, b] = c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map((v) => {
            const s = v / 255;
            return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [x, y] = [lum(fg), lum(bg)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
}

// --- the steps ---

async function theList(pages, users) {
    const { a, b } = pages;
    const names = await until(async () => {
        const n = await roomNames(a);
        return n.length > 0 && n;
    });
    check(names && names[0] === 'Lobby', 'the rooms list opens with the lobby', `list: ${names}`);
    const heading = a.getByRole('heading', { name: 'Rooms' });
    const lobbyButton = a.getByRole('button', { name: /^Lobby\b/ });
    check(await heading.isVisible() && await lobbyButton.isVisible(),
          'under a "Rooms" heading, the lobby is a button named after it', `button label: ${(await roomRow(a, LOBBY))?.label}`);
    const server = await serverRoom(b, users.base, LOBBY);
    const badge = await until(async () => (await roomRow(b, LOBBY))?.unread === String(server.unread) && server.unread > 0);
    check(badge, `ben's lobby row shows the server's unread count (${server.unread})`, JSON.stringify(await roomRow(b, LOBBY)));
}

async function lobbyHistory(a, users, hist) {
    const { seeded } = users;
    await openRoom(a, LOBBY);
    const ten = await until(async () => (await shown(a)).length === 10 && await a.evaluate(() => {
        const log = document.querySelector('.room-view .chat-log');
        return Math.abs(log.scrollHeight - log.clientHeight - log.scrollTop) < 2;
    }));
    const first = await shown(a);
    check(ten && JSON.stringify(first.map((m) => m.id)) === JSON.stringify(seeded.slice(-10).map((m) => m.id)),
          'ann opens the lobby: the newest 10 messages, scrolled to the newest', `ids: ${first.map((m) => m.id)}`);
    check(first.every((m, i) => m.author === seeded.at(-10 + i).from.nickname),
          'each with its sender\'s nickname', JSON.stringify(first.map((m) => m.author)));
    check(await focused(a) === 'textarea#room-input.chat-input', 'the composer has the focus', await focused(a));
    const composer = a.getByRole('textbox', { name: 'Message to Lobby' });
    check(await composer.isVisible(), 'and its label says where the message goes ("Message to Lobby")');

    const before = hist.urls.filter((u) => u.includes('before=')).length;
    for (const want of [20, 25]) {
        await a.evaluate(() => {
            const log = document.querySelector('.room-view .chat-log');
            for (let i = 0; i < 40; i++) {
                log.scrollTop = i % 2;
                log.dispatchEvent(new Event('scroll'));
            }
        });
        const grew = await until(async () => (await shown(a)).length === want);
        await a.waitForTimeout(300); // room for a second request, if the throttle let one through
        const pages = hist.urls.filter((u) => u.includes('before=')).length - before;
        check(grew && pages === (want === 20 ? 1 : 2), `scrolling to the top loads the older ones: ${want} shown, one request for the fling`,
              `shown: ${(await shown(a)).length}; requests with before=: ${pages}`);
    }
    const ids = (await shown(a)).map((m) => m.id);
    check(JSON.stringify(ids) === JSON.stringify(seeded.map((m) => m.id)), 'all 25 once, oldest first', `ids: ${ids}`);
    check(hist.max === 1, 'never more than one history request at a time', `at most ${hist.max}`);
    check(/start of Lobby/.test(await a.textContent('.room-view .chat-log-status')), 'at the start, the log says so');
    const read = await until(async () => (await serverRoom(a, users.base, LOBBY)).unread === 0 && (await roomRow(a, LOBBY)).unread === '');
    check(read, 'the lobby is marked read, on the page and on the server');
}

async function talk(pages, users) {
    const { a, b, c } = pages;
    await openRoom(b, LOBBY);
    await until(async () => (await shown(b)).length >= 10);
    const catBefore = Number((await roomRow(c, LOBBY)).unread || 0);

    const hello = 'Hello everyone, ann here';
    await say(a, hello);
    const atBen = await until(async () => (await shown(b)).find((m) => m.body === hello));
    check(atBen && atBen.author === ANN, 'ann writes in the lobby: ben sees it live, with her nickname', JSON.stringify(atBen));
    const own = await until(async () => await countBody(a, hello) === 1 && (await a.$$('.room-view .chat-pending > li')).length === 0);
    check(own, 'ann\'s own copy replaces her "sending…" one');
    const catBadge = await until(async () => (await roomRow(c, LOBBY)).unread === String(catBefore + 1));
    check(catBadge, 'cat, with the lobby closed, sees its unread count go up by one', JSON.stringify(await roomRow(c, LOBBY)));
    const liveText = await b.textContent('.room-view [aria-live="polite"]:not(.chat-typing)');
    check(liveText.includes(ANN) && liveText.includes(hello), 'ben\'s polite live region reads the new message out', `live region: ${liveText}`);

    const reply = 'Hi ann, ben in the lobby';
    await say(b, reply);
    const atAnn = await until(async () => (await shown(a)).find((m) => m.body === reply));
    check(atAnn && atAnn.author === BEN, 'ben answers: ann sees it with his nickname');

    await openRoom(c, LOBBY);
    const both = await until(async () => await countBody(c, hello) === 1 && await countBody(c, reply) === 1);
    check(both, 'cat opens the lobby: both messages are there, once');
    const catCleared = await until(async () => (await roomRow(c, LOBBY)).unread === '');
    check(catCleared, 'and her unread count goes');
    const third = 'cat joins the conversation';
    await say(c, third);
    const everywhere = await until(async () => await countBody(a, third) === 1 && await countBody(b, third) === 1);
    check(everywhere, 'cat writes: ann and ben both see it');
}

/** A message that arrives while ann reads older ones is not read until she scrolls down to it. */
async function onlyWhatWasShown(pages, users) {
    const { a, b } = pages;
    await a.evaluate(() => {
        const log = document.querySelector('.room-view .chat-log');
        log.scrollTop = 0;
    });
    await a.waitForTimeout(300);
    const body = 'ann is reading older messages';
    await say(b, body);
    await until(async () => await countBody(a, body) === 1);
    await a.waitForTimeout(500);
    const row = await roomRow(a, LOBBY);
    const server = await serverRoom(a, users.base, LOBBY);
    check(row.unread === '1' && server.unread === 1,
          'a message that arrives while ann reads older ones, scrolled up, stays unread (page and server)', JSON.stringify({ row, server: server.unread }));
    await a.evaluate(() => {
        const log = document.querySelector('.room-view .chat-log');
        log.scrollTop = log.scrollHeight;
    });
    const read = await until(async () => (await roomRow(a, LOBBY)).unread === '' && (await serverRoom(a, users.base, LOBBY)).unread === 0);
    check(read, 'scrolling down to it marks it read');
}

async function typing(pages, users) {
    const { a, b, c, e } = pages;
    await a.focus('#room-input');
    await a.keyboard.type('ann is wri', { delay: 30 });
    const one = await until(() => typingLine(b), 3_000);
    check(one && one.startsWith(`${ANN} is typing`), 'ann types: ben sees "ann is typing…"', `line: ${one}`);
    await c.focus('#room-input');
    await c.keyboard.type('cat too', { delay: 30 });
    const two = await until(async () => (await typingLine(b))?.startsWith(`${ANN} and ${CAT} are typing`), 3_000);
    check(two, 'cat types too: ben sees "ann and cat are typing…"', `line: ${await typingLine(b)}`);
    await socketFrame(e, { type: 'room.typing', room: LOBBY, active: true });
    const several = await until(async () => (await typingLine(b))?.startsWith('several people are typing'), 3_000);
    check(several, 'a third typist: "several people are typing…"', `line: ${await typingLine(b)}`);
    await socketFrame(e, { type: 'room.typing', room: LOBBY, active: false });

    // the other way: ben types, ann sees him
    await a.fill('#room-input', '');
    await c.fill('#room-input', '');
    await b.focus('#room-input');
    await b.keyboard.type('ben answers', { delay: 30 });
    const back = await until(async () => (await typingLine(a))?.startsWith(`${BEN} is typing`), 3_000);
    check(back, 'and the other way: ann sees "ben is typing…"', `line: ${await typingLine(a)}`);
    await b.click('#room-title');
    const gone = await until(async () => !await typingLine(a), 2_000);
    check(gone, 'ben leaves the field: it goes at once');
    await b.fill('#room-input', '');
    await a.click('#room-title');
    await c.click('#room-title');
    await until(async () => !await typingLine(b) && !await typingLine(a), 7_000);
}

async function createAndJoin(pages, users) {
    const { a, b, c } = pages;
    await a.getByRole('button', { name: 'New room' }).click();
    const nameBox = a.getByRole('textbox', { name: 'Room name' });
    check(await nameBox.isVisible() && await focused(a) === 'input#room-name.chat-search-input',
          '"New room" opens a form whose field has a label and the focus');
    await nameBox.fill('ab');
    await nameBox.press('Enter');
    const short = await a.textContent('#room-name-error');
    check(/3 to 40 characters/.test(short) && await nameBox.getAttribute('aria-invalid') === 'true'
          && (await nameBox.getAttribute('aria-describedby')).includes('room-name-error'),
          'a name of two characters is refused with the reason, tied to the field', `error: ${short}`);
    // a control character passes the page's length check; the server refuses it (422, field name)
    await nameBox.fill('Bad\u007fname');
    await nameBox.press('Enter');
    const control = await until(async () => {
        const t = await a.textContent('#room-name-error');
        return /control/.test(t) && t;
    });
    check(control === 'Room name must not contain control characters.' && await nameBox.getAttribute('aria-invalid') === 'true',
          'a name the server refuses (422) shows the server\'s reason under the field', `error: ${await a.textContent('#room-name-error')}`);
    await nameBox.fill(ROOM);
    await nameBox.press('Enter');
    const opened = await until(async () => (await roomHead(a))?.name === ROOM);
    check(opened, 'a good name creates the room and opens it', JSON.stringify(await roomHead(a)));
    const roomId = Number(await a.getAttribute('.room-view', 'data-room-id'));
    users.roomId = roomId;
    const order = await roomNames(a);
    check(order[0] === 'Lobby' && order[1] === ROOM, 'in ann\'s list it comes right after the lobby (joined)', `list: ${order}`);

    const atBen = await until(async () => (await roomRow(b, roomId))?.joined === 'false');
    check(atBen, 'ben\'s list gets the new room live (room.created), not joined', JSON.stringify(await roomRow(b, roomId)));
    const below = (await roomNames(b)).indexOf(ROOM);
    check(below > 0, 'after the lobby', `list: ${await roomNames(b)}`);

    // the same name again, from cat, in another case
    await c.getByRole('button', { name: 'New room' }).click();
    await c.getByRole('textbox', { name: 'Room name' }).fill(ROOM.toUpperCase());
    await c.getByRole('textbox', { name: 'Room name' }).press('Enter');
    const taken = await until(async () => {
        const t = await c.textContent('#room-name-error');
        return t && t.length > 0 && t;
    });
    check(/already exists/.test(taken ?? ''), 'cat tries the same name in capitals: refused (409), saying the name is taken', `error: ${taken}`);
    await c.keyboard.press('Escape');
    check(await c.locator('#room-create-form').isHidden() && await focused(c) === 'button.button.button-quiet.room-new',
          'Escape closes the form and gives the focus back to "New room"', await focused(c));

    await openRoom(b, roomId);
    const join = b.getByRole('button', { name: `Join ${ROOM}` });
    check(await join.isVisible() && await b.locator('.room-view #room-input').isHidden(),
          'ben opens it: a Join button, and no composer before joining');
    await join.click();
    const joined = await until(async () => (await roomHead(b))?.meta === '2 members' && await b.locator('#room-input').isVisible());
    check(joined, 'he joins: the composer appears and the room has 2 members', JSON.stringify(await roomHead(b)));
    const annCount = await until(async () => (await roomHead(a))?.meta === '2 members');
    check(annCount, 'ann sees the member count go to 2 live (room.member)', JSON.stringify(await roomHead(a)));

    const line = 'Which book first?';
    await say(b, line);
    const atAnn = await until(async () => (await shown(a)).find((m) => m.body === line));
    check(atAnn && atAnn.author === BEN, 'ben writes in the new room: ann sees it');
}

async function mention(pages, users) {
    const { a, b, c } = pages;
    // ann reads the book club; ben mentions her in the lobby
    const body = `@${ANN.toUpperCase()} come back to the lobby`;
    await openRoom(b, LOBBY);
    await until(async () => (await roomHead(b))?.name === 'Lobby');
    await say(b, body);
    const badge = await until(async () => {
        const row = await roomRow(a, LOBBY);
        return row.mentions === '@1' && row.unread !== '' && row;
    });
    check(badge, 'ben writes "@ANN…" (another case) in the lobby: a mention badge "@1" on ann\'s lobby, beside its unread count',
          JSON.stringify(await roomRow(a, LOBBY)));
    const name = await a.locator(`.room-item[data-room-id="${LOBBY}"] .chat-user-button`).evaluate((el) => el.textContent);
    check(/1 mention of you/.test(name) && /1 unread message/.test(name), 'the lobby\'s button says both in words to a screen reader', `text: ${name}`);
    const server = await serverRoom(a, users.base, LOBBY);
    check(server.mentions === 1, 'as the server counts it', JSON.stringify(server));
    const said = await a.textContent('.chat-rooms [aria-live="polite"]');
    check(said.includes(BEN) && said.includes('mentioned you'), 'and a polite announcement that ben mentioned her', `said: ${said}`);
    const atCat = await until(async () => (await shown(c)).find((m) => m.body === body));
    check(atCat && atCat.mention === 'false', 'cat sees the message, not marked as mentioning her', JSON.stringify(atCat));

    await openRoom(a, LOBBY);
    const marked = await until(async () => (await shown(a)).find((m) => m.body === body));
    check(marked && marked.mention === 'true' && marked.marked[0] === `@${ANN.toUpperCase()}`,
          'ann opens the lobby: the message is marked, her @nickname highlighted', JSON.stringify(marked));
    const label = await a.locator(`.room-view li[data-id="${marked?.id}"]`).textContent();
    check(label.includes('mentions you'), 'with words for it ("mentions you"), not colour alone');
    const cleared = await until(async () => (await roomRow(a, LOBBY)).mentions === '' && (await serverRoom(a, users.base, LOBBY)).mentions === 0);
    check(cleared, 'the mention badge goes, on the page and on the server');
    await shot(a, 'rooms-lobby-desktop');
    await a.emulateMedia({ colorScheme: 'dark' });
    await shot(a, 'rooms-lobby-dark');
    await a.emulateMedia({ colorScheme: 'light' });

    // contrast of a mention badge, light and dark
    await openRoom(a, users.roomId);
    await say(b, `@${ANN} one more`);
    await until(async () => (await roomRow(a, LOBBY)).mentions === '@1');
    for (const scheme of ['light', 'dark']) {
        await a.emulateMedia({ colorScheme: scheme });
        const [fg, bg] = await a.$eval(`.room-item[data-room-id="${LOBBY}"] .room-mention-badge`, (el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]);
        const ratio = contrast(fg, bg);
        check(ratio >= 4.5, `the mention badge reads in ${scheme} (contrast ${ratio.toFixed(1)}:1)`, `${fg} on ${bg}`);
    }
    await a.emulateMedia({ colorScheme: null });
}

async function leave(pages, users) {
    const { a, b } = pages;
    await openRoom(b, users.roomId);
    await b.getByRole('button', { name: `Leave ${ROOM}` }).click();
    const left = await until(async () => (await roomRow(b, users.roomId))?.joined === 'false' && await b.getByRole('button', { name: `Join ${ROOM}` }).isVisible());
    check(left, 'ben leaves the room: his list says so and the view offers to join again');
    const count = await until(async () => (await roomHead(a))?.meta === '1 member');
    check(count, 'ann, in the room, sees 1 member', JSON.stringify(await roomHead(a)));
    check(await a.locator('.room-view .room-membership').isVisible()
          && await a.locator('.room-view').getAttribute('data-room-id') === String(users.roomId), 'ann can leave it too (a Leave button)');
    await openRoom(a, LOBBY);
    await until(async () => (await roomHead(a))?.name === 'Lobby');
    check(await a.locator('.room-view .room-membership').isHidden(), 'the lobby has no Leave button');
}

/**
 * ben's membership ends behind his page's back (its room.member frame lost): his message is refused,
 * and the refusal arrives after he has moved to the lobby, so the text waits for the room's composer.
 */
async function forbidden(pages, users, net) {
    const { b } = pages;
    await openRoom(b, users.roomId);
    await b.getByRole('button', { name: `Join ${ROOM}` }).click();
    await until(() => b.locator('.room-view #room-input').isVisible());
    net.dropMember = true;
    const res = await b.context().request.post(`${users.base}/api/rooms/${users.roomId}/leave`);
    await b.waitForTimeout(500);
    net.holdErrors = true;
    const body = 'Is anyone still here?';
    await say(b, body);
    await until(() => net.held.length > 0);
    await openRoom(b, LOBBY);
    await until(async () => (await roomHead(b))?.name === 'Lobby');
    net.holdErrors = false;
    net.held.splice(0).forEach((data) => net.current.ws.send(data));
    const said = await until(async () => {
        const t = await b.textContent('.chat-rooms [aria-live="polite"]');
        return /was not sent/.test(t) && t;
    });
    check(res.status() === 200 && said && said.includes(ROOM), 'ben wrote in a room he had left in another tab, then moved on: told politely it was not sent',
          `said: ${said}`);
    check(await b.locator('.room-view .room-problem').isHidden() && await b.inputValue('#room-input') === '',
          'the lobby he is reading is left alone');
    await openRoom(b, users.roomId);
    const problem = await until(async () => await b.locator('.room-view .room-problem').isVisible() && await b.textContent('.room-view .room-problem'));
    check(/not a member/.test(problem || ''), 'back in the room, the reason ("not a member") shows as an alert', `problem: ${problem}`);
    const rejoin = b.getByRole('button', { name: `Join ${ROOM}` });
    check(await until(() => rejoin.isVisible()), 'the page has learnt he left: it offers to join again');
    await rejoin.click();
    const kept = await until(async () => await b.locator('#room-input').isVisible() && await b.inputValue('#room-input'));
    check(kept === body, 'he joins again: his text is waiting in the composer', `input: ${kept}`);
    await b.fill('#room-input', '');
    net.dropMember = false;
}

async function rateLimit(pages, users) {
    const { c } = pages;
    await openRoom(c, LOBBY);
    let refused = null;
    const sent = [];
    for (let i = 1; i <= BURST + 4 && !refused; i++) {
        const body = `cat floods ${i}`;
        sent.push(body);
        await say(c, body);
        const outcome = await until(async () => {
            if (await c.locator('.room-view .room-problem').isVisible())
                return { refused: body };
            return await countBody(c, body) === 1 && { sent: body };
        }, 3_000);
        refused = outcome?.refused ?? null;
    }
    const problem = refused ? await c.textContent('.room-view .room-problem') : '';
    check(refused && /too fast/.test(problem) && /try again in \d+ seconds?/.test(problem),
          'cat sends faster than the limit: the refusal shows, with how long to wait (retry_after_ms)', `problem: ${problem}; sent: ${sent}`);
    check(await c.getByRole('alert').filter({ hasText: 'too fast' }).count() === 1, 'as an alert');
    const kept = await c.inputValue('#room-input');
    check(refused && kept === refused, 'the text that was not sent is back in the composer', `input: ${kept}; refused: ${refused}`);
    const stored = await serverMessages(c, users.base, LOBBY);
    check(refused && !stored.some((m) => m.body === refused) && await countBody(c, refused) === 0,
          'and it was not stored, nor shown as sent');
    await c.fill('#room-input', '');
}

async function reconnect(pages, users, net) {
    const { a, b, c } = pages;
    await openRoom(b, LOBBY);
    await until(async () => (await roomHead(b))?.name === 'Lobby');
    const last = Math.max(...(await shown(b)).map((m) => m.id));
    const onlineBefore = await b.textContent('footer .connection');

    net.cut = true;
    net.current.ws.close({ code: 1001, reason: 'the test cuts the network' });
    net.current.server.close({ code: 1000, reason: 'the test cuts the network' });
    const down = await until(async () => await b.textContent('footer .connection') !== 'online');
    check(onlineBefore === 'online' && down, 'ben\'s connection is cut');

    const missed = ['While ben was away 1', 'While ben was away 2'];
    await openRoom(a, LOBBY);
    for (const body of missed)
        await say(a, body);
    await until(async () => await countBody(a, missed[1]) === 1);
    const urlsBefore = net.urls.length;
    net.cut = false;
    const back = await until(async () => await b.textContent('footer .connection') === 'online', RECONNECT_MS);
    check(back, 'the connection comes back by itself');
    const resumed = net.urls.slice(urlsBefore).at(-1) ?? '';
    const after = Number(/\?after=(\d+)$/.exec(resumed)?.[1] ?? 0);
    check(after >= last, `resuming after the last id seen, room messages included (after=${after}, newest lobby message seen ${last})`, `url: ${resumed}`);
    const arrived = await until(async () => (await Promise.all(missed.map((m) => countBody(b, m)))).every((n) => n === 1));
    await b.waitForTimeout(1_000);
    check(arrived, 'the lobby messages written meanwhile reach ben');
    const ids = (await shown(b)).map((m) => m.id);
    check(new Set(ids).size === ids.length && (await Promise.all(missed.map((m) => countBody(b, m)))).every((n) => n === 1),
          'and nothing shows twice', `ids: ${ids}`);
    const after2 = 'After the reconnect';
    // from a member with a full budget (cat used hers, the seeders theirs)
    await register(pages.e, users.base, nick('late'));
    await socketOpen(pages.e);
    await socketSay(pages.e, LOBBY, [after2]);
    const live = await until(async () => await countBody(b, after2) === 1);
    check(live, 'live messages flow again');
}

async function keyboard(page) {
    await openRoom(page, LOBBY);
    await page.getByRole('button', { name: 'Close' }).press('Enter');
    const row = await focused(page);
    const rowIsLobby = await page.evaluate(() => document.activeElement.closest('.room-item')?.dataset.roomId);
    check(row === 'button.chat-user-button' && rowIsLobby === '1', 'closing a room (Enter on Close) gives the focus back to its row', row);
    await page.keyboard.press('Enter');
    const inInput = await until(async () => await focused(page) === 'textarea#room-input.chat-input');
    check(inInput, 'keyboard: Enter on the lobby opens it with the focus in the composer', await focused(page));
    const body = 'Typed with the keyboard only';
    await page.keyboard.type(body);
    await page.keyboard.press('Enter');
    const sent = await until(async () => await countBody(page, body) === 1);
    check(sent, 'typing and Enter send it');
}

async function phone(page, users) {
    await page.setViewportSize(PHONE);
    await page.click('.chat-toggle');
    const again = await until(() => page.locator('.room-view #room-input').isVisible());
    check(again && await page.locator('.chat-rooms').isHidden(), 'on a 390 px phone the chat panel opens on the room left open, alone');
    await page.getByRole('button', { name: 'Close' }).click();
    const listShown = await until(() => page.locator('.chat-rooms').isVisible());
    check(listShown && await focused(page) === 'button.chat-user-button', 'Close shows the rooms list, the focus on the lobby\'s row');
    await shot(page, 'rooms-list-phone');
    await page.keyboard.press('Enter');
    const inRoom = await until(async () => await page.locator('.room-view #room-input').isVisible() && await page.locator('.chat-rooms').isHidden());
    check(inRoom, 'a room takes the whole panel, composer included');
    const extra = await overflow(page);
    check(extra <= 0, 'without sideways scrolling', `overflow: ${extra}px`);
    await shot(page, 'rooms-lobby-phone');
    await page.getByRole('button', { name: 'Close' }).click();
    check(await page.locator('.chat-rooms').isVisible(), 'Close goes back to the lists');
    await page.click('.chat-toggle');
    await page.setViewportSize(DESKTOP);
}

async function run(base, browser) {
    const [a, b, c, e] = [await newPage(browser, DESKTOP), await newPage(browser, DESKTOP), await newPage(browser, DESKTOP), await newPage(browser, DESKTOP)];
    const watchers = [watch(a, 'ann'), watch(b, 'ben'), watch(c, 'cat'), watch(e, 'seeders')];
    watchers[2].expectHttpError('/api/rooms', 409); // cat tries a name that is taken
    watchers[0].expectHttpError('/api/rooms', 422); // ann, one with a control character
    const users = { base };
    users.ann = await register(a, base, ANN);
    users.ben = await register(b, base, BEN);
    users.cat = await register(c, base, CAT);

    // the lobby's history: five seeders, five messages each (within the limit's burst), over their own sockets
    watchers[3].expectHttpError('/favicon.ico', 404); // Chromium asks for one for a plain file
    await e.goto(`${base}/favicon.svg`);
    users.seeded = [];
    for (let s = 1; s <= 5; s++) {
        await register(e, base, nick(`seed${s}`));
        await socketOpen(e);
        users.seeded.push(...await socketSay(e, LOBBY, Array.from({ length: 5 }, (_, i) => `Lobby history ${(s - 1) * 5 + i + 1}`)));
    }

    // ben's live connection goes through the test, which can cut it
    const net = { cut: false, dropMember: false, holdErrors: false, held: [], urls: [], current: null };
    await b.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        net.urls.push(ws.url());
        if (net.cut) {
            ws.close({ code: 1001, reason: 'the test cuts the network' });
            return;
        }
        const server = ws.connectToServer();
        net.current = { ws, server };
        // a frame the page sends as the test cuts the network is lost with it (sent on, it would
        // meet a closed socket)
        ws.onMessage((data) => {
            if (!net.cut)
                server.send(data);
        });
        server.onMessage((data) => {
            const type = JSON.parse(data).type;
            if (net.dropMember && type === 'room.member')
                return;
            if (net.holdErrors && type === 'error') {
                net.held.push(data);
                return;
            }
            ws.send(data);
        });
    });
    // ann's requests for the lobby's history, and how many were on their way at once
    const hist = { urls: [], inFlight: 0, max: 0 };
    const ofHistory = (req) => new URL(req.url()).pathname === `/api/rooms/${LOBBY}/messages`;
    a.on('request', (req) => {
        if (ofHistory(req)) {
            hist.urls.push(req.url());
            hist.max = Math.max(hist.max, ++hist.inFlight);
        }
    });
    const done = (req) => {
        if (ofHistory(req))
            hist.inFlight -= 1;
    };
    a.on('requestfinished', done);
    a.on('requestfailed', done);

    for (const page of [a, b, c])
        await page.goto(`${base}/`);

    const pages = { a, b, c, e };
    await theList(pages, users);
    await lobbyHistory(a, users, hist);
    await talk(pages, users);
    await onlyWhatWasShown(pages, users);
    await typing(pages, users);
    await createAndJoin(pages, users);
    await mention(pages, users);
    await leave(pages, users);
    await forbidden(pages, users, net);
    await rateLimit(pages, users);
    await reconnect(pages, users, net);
    await keyboard(a);
    await phone(c, users);

    const problems = watchers.flatMap((w) => w.problems());
    check(problems.length === 0, 'no console errors, page errors or failed requests', list(problems));
}

process.exit(await runTests('rooms.mjs', run, { timeoutMs: 150_000 }));
