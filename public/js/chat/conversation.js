/*
 * One open conversation: a header with the other member and their presence, the messages, the
 * messages still waiting for the server, the typing indicator and the composer.
 *
 * It opens on the newest PAGE messages only, however tall the window; older pages come when the
 * reader goes up (log.js). With unread messages it opens instead at the first of them, under a
 * "New messages" line (the pages back to it are loaded), and what counts as read is what has been
 * on screen: the newest message whose end has been in view, never what is still below.
 *
 * Messages are kept by id, so a message that arrives twice (live and in a history page, or again
 * after a reconnect) is shown once. Older pages are loaded one request at a time, and the log's
 * scrollTop grows by the height they add, so the message the reader was looking at stays put.
 */
import { h, replace } from '../dom.js';
import { api, errorOf } from '../api.js';
import { withLinks } from './links.js';
import { timeAgo } from './times.js';
import { decorate, watchUpward } from './log.js';

const PAGE = 10;
const PAGE_MAX = 50;         // the API's most per request, for the pages back to the first unread
const BACK_MAX = 200;        // the unread are looked for this far back at most
const NEAR_TOP_PX = 80;      // this close to the top, going up fetches the next older page
const NEAR_BOTTOM_PX = 48;   // this close to the bottom, a new message scrolls into view
const BODY_MAX = 4000;

/**
 * createConversation({store, peerId, unread, draft, onSend, onInput, onBlur, onRetry, onDiscard,
 * onClose, onRead, escapeCloses, onAuthLost}) builds the conversation with peerId, which had
 * `unread` unread messages when it was opened and `draft` in its composer. onSend(body) sends a
 * message; onInput(empty) and onBlur() drive our typing state; onRead(upTo, stillUnread) is called
 * when the messages up to id upTo have been in view (stillUnread: the other member's messages after
 * it) and returns whether that counted (false while the conversation is not in front of the
 * reader); escapeCloses() says whether Escape closes the conversation (a desktop column).
 * Returns {node, peerId, add, showTyping, renderPending, newestId, viewed, draft, focus, destroy}.
 */
export function createConversation(opts) {
    const { store, peerId } = opts;
    const me = store.me;
    const peer = () => store.user(peerId) ?? { id: peerId, nickname: 'a member', online: false };
    const byId = new Map(); // message id → its <li>
    let hasMore = false;
    let loading = false;
    let loaded = false;
    let gone = false;
    let firstUnread = null; // the id under the "New messages" line
    let readUpTo = 0;       // the newest id reported read

    const title = h('h3', { class: 'chat-peer-name', id: 'chat-conversation-title', tabindex: -1, dir: 'auto' });
    const presence = h('span', { class: 'chat-peer-presence' });
    const status = h('p', { class: 'chat-log-status' });
    const messages = h('ol', { class: 'chat-messages', 'aria-labelledby': 'chat-conversation-title' });
    const pendingList = h('ol', { class: 'chat-pending', 'aria-label': 'Waiting to be sent' });
    // focusable, so the keyboard can scroll it; not a live region, or every older page would be read out
    const log = h('div', { class: 'chat-log', tabindex: 0, role: 'region', 'aria-label': 'Messages' }, status, messages, pendingList);
    const announce = h('p', { class: 'chat-sr-only', 'aria-live': 'polite' });
    // the line keeps its height when empty, so the log does not jump when someone starts typing
    const typing = h('p', { class: 'chat-typing', 'data-active': 'false', 'aria-live': 'polite' });
    const input = h('textarea', {
        id: 'chat-input',
        class: 'chat-input',
        rows: 1,
        maxlength: BODY_MAX,
        placeholder: 'Write a message…',
        autocomplete: 'off',
        dir: 'auto',
    });
    input.value = opts.draft ?? '';
    const inputLabel = h('label', { for: 'chat-input', class: 'chat-sr-only' });
    const form = h('form', { class: 'chat-composer', novalidate: true },
        inputLabel, input, h('button', { type: 'submit', class: 'button chat-send' }, 'Send'));
    const node = h('section', { class: 'chat-conversation', 'aria-labelledby': 'chat-conversation-title', 'data-peer-id': peerId },
        h('header', { class: 'chat-conversation-head' },
            h('div', { class: 'chat-peer' }, title, presence),
            h('button', { type: 'button', class: 'button button-quiet chat-close', onclick: () => opts.onClose() }, 'Close')),
        log, typing, announce, form);

    function drawPeer() {
        const p = peer();
        title.textContent = p.nickname;
        presence.textContent = p.online ? 'online' : 'offline';
        presence.dataset.online = String(p.online);
        inputLabel.textContent = `Message to ${p.nickname}`;
    }

    const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
    const toBottom = () => {
        log.scrollTop = log.scrollHeight;
    };

    function messageItem(m) {
        const mine = m.from === me.id;
        return h('li', { class: 'chat-message', 'data-id': m.id, 'data-mine': String(mine), 'data-from': m.from, 'data-at': m.created_at },
            h('p', { class: 'chat-message-meta' },
                h('span', { class: 'chat-message-author', dir: 'auto' }, mine ? me.nickname : peer().nickname), ' ',
                timeAgo(m.created_at, { class: 'chat-message-time' })),
            h('p', { class: 'chat-message-body', dir: 'auto' }, withLinks(m.body)));
    }

    /** Puts a message in id order; returns false when it is already shown. */
    function insert(m) {
        if (byId.has(m.id))
            return false;
        const li = messageItem(m);
        byId.set(m.id, li);
        let next = null;
        // past the newer messages (and the day lines among them, which decorate() puts back in place)
        for (let el = messages.lastElementChild; el && !(Number(el.dataset.id) < m.id); el = el.previousElementSibling)
            next = el;
        messages.insertBefore(li, next);
        return true;
    }

    function drawStatus(error) {
        if (error) {
            replace(status, error, ' ', h('button', { type: 'button', class: 'button button-quiet', onclick: () => (loaded ? older() : first()) }, 'Try again'));
        } else if (!loaded || loading) {
            replace(status, loaded ? 'Loading older messages…' : 'Loading messages…');
        } else if (hasMore) {
            replace(status, h('button', { type: 'button', class: 'button button-quiet chat-older', onclick: () => older() }, 'Show older messages'));
        } else {
            replace(status, byId.size ? `This is the start of your conversation with ${peer().nickname}.` : `No messages yet. Say hello to ${peer().nickname}!`);
        }
        status.dataset.state = error ? 'error' : loading || !loaded ? 'loading' : hasMore ? 'more' : 'start';
    }

    async function fetchPage(before, limit = PAGE) {
        const query = before ? `?before=${before}&limit=${limit}` : `?limit=${limit}`;
        const res = await api('GET', `/api/messages/${peerId}${query}`);
        if (gone)
            return null;
        if (res.status === 200 && Array.isArray(res.json?.messages))
            return res.json;
        if (res.status === 401)
            opts.onAuthLost();
        drawStatus(errorOf(res).message);
        return null;
    }

    const fromPeer = (list) => list.filter((m) => m.from === peerId);

    async function first() {
        if (loading)
            return;
        loading = true;
        drawStatus();
        const unread = opts.unread ?? 0;
        // one read message above the line, for context
        let page = await fetchPage(null, Math.min(Math.max(PAGE, unread + 1), PAGE_MAX));
        let all = page?.messages ?? [];
        // more unread than one request brings: the pages back to the first of them
        while (page && page.has_more && fromPeer(all).length < unread && all.length < BACK_MAX) {
            const back = await fetchPage(all[0].id, PAGE_MAX);
            if (back)
                all = [...back.messages, ...all];
            page = back && { ...back, messages: all };
        }
        loading = false;
        if (!page)
            return;
        loaded = true;
        hasMore = Boolean(page.has_more);
        all.forEach(insert);
        const theirs = fromPeer(all);
        if (unread > 0 && theirs.length)
            firstUnread = theirs[Math.max(0, theirs.length - unread)].id;
        decorate(messages, firstUnread);
        drawStatus();
        if (firstUnread !== null)
            showFirstUnread();
        else
            toBottom();
        viewed();
    }

    /** The "New messages" line at the top of the log (or the newest, when everything fits). */
    function showFirstUnread() {
        let li = byId.get(firstUnread);
        while (li.previousElementSibling?.classList.contains('chat-sep'))
            li = li.previousElementSibling; // the line itself (and the day's) in view too
        const top = li.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop;
        log.scrollTop = Math.max(0, top - 4);
    }

    /** Reports as read the newest message whose end is in view, when that is further than before. */
    function viewed() {
        if (!loaded || gone || log.clientHeight === 0)
            return;
        const bottom = log.getBoundingClientRect().bottom + 1;
        let upTo = 0;
        for (let li = messages.lastElementChild; li; li = li.previousElementSibling) {
            if (li.dataset.id && li.getBoundingClientRect().bottom <= bottom) {
                upTo = Number(li.dataset.id);
                break;
            }
        }
        if (upTo <= readUpTo)
            return;
        let still = 0;
        for (const [id, li] of byId) {
            if (id > upTo && li.dataset.from === String(peerId))
                still += 1;
        }
        if (opts.onRead(upTo, still))
            readUpTo = upTo;
    }

    /** Whether the end of the message with id is inside the log's view. */
    function inView(id) {
        const li = byId.get(id);
        if (!li || !loaded || log.clientHeight === 0)
            return false;
        const box = log.getBoundingClientRect();
        const r = li.getBoundingClientRect();
        return r.bottom <= box.bottom + 1 && r.bottom >= box.top;
    }

    /** The next older page, unless one is on its way already or there is none. */
    async function older() {
        if (loading || !loaded || !hasMore || gone)
            return;
        loading = true;
        drawStatus();
        const page = await fetchPage(oldestId());
        loading = false;
        if (!page)
            return;
        // the message that was at the top stays where it was: measured on it rather than on the
        // log's height, which also changes when it joins the group of the page above
        const anchor = messages.querySelector(':scope > li[data-id]');
        const y = anchor?.getBoundingClientRect().top ?? 0;
        hasMore = Boolean(page.has_more);
        page.messages.forEach(insert);
        decorate(messages, firstUnread);
        drawStatus();
        if (anchor)
            log.scrollTop += anchor.getBoundingClientRect().top - y;
    }

    const oldestId = () => Number(messages.querySelector(':scope > li[data-id]')?.dataset.id ?? 0) || null;
    function newestId() {
        return Number([...messages.querySelectorAll(':scope > li[data-id]')].at(-1)?.dataset.id ?? 0) || null;
    }

    const stopWatching = watchUpward(log, NEAR_TOP_PX, () => older());
    log.addEventListener('scroll', () => viewed(), { passive: true });

    function renderPending() {
        const stick = nearBottom();
        replace(pendingList, store.pendingFor(peerId).map((p) => h('li', {
            class: 'chat-message',
            'data-mine': 'true',
            'data-pending': p.failed ? 'failed' : 'sending',
            'data-client-id': p.clientId,
        },
        h('p', { class: 'chat-message-meta' },
            h('span', { class: 'chat-message-author' }, me.nickname), ' ',
            h('span', { class: 'chat-message-state' }, p.failed ? 'not sent' : 'sending…')),
        h('p', { class: 'chat-message-body', dir: 'auto' }, p.body),
        p.failed && h('p', { class: 'chat-message-error' }, p.failed, ' ',
            h('button', { type: 'button', class: 'button button-quiet', onclick: () => opts.onRetry(p.clientId) }, 'Retry'), ' ',
            h('button', { type: 'button', class: 'button button-quiet', onclick: () => opts.onDiscard(p.clientId) }, 'Remove')))));
        pendingList.hidden = pendingList.childElementCount === 0;
        if (stick)
            toBottom();
    }

    input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            form.requestSubmit();
        }
    });
    input.addEventListener('input', () => opts.onInput(input.value.trim() === ''));
    input.addEventListener('blur', () => opts.onBlur());
    node.addEventListener('keydown', (event) => {
        if (event.key === 'Escape' && !event.defaultPrevented && opts.escapeCloses?.()) {
            event.preventDefault();
            opts.onClose();
        }
    });
    form.addEventListener('submit', (event) => {
        event.preventDefault();
        const body = input.value.trim();
        if (!body)
            return;
        input.value = '';
        opts.onSend(body);
        toBottom();
    });

    drawPeer();
    renderPending();
    first();

    return {
        node,
        peerId,
        /** A live message of this conversation; returns whether it is in view (its end on screen). */
        add(m) {
            const stick = nearBottom() || m.from === me.id;
            if (!insert(m))
                return inView(m.id);
            decorate(messages, firstUnread);
            if (loaded && !hasMore)
                drawStatus();
            if (stick)
                toBottom();
            if (m.from === peerId)
                announce.textContent = `${peer().nickname}: ${m.body}`;
            // not in view, it stays unread (the caller counts it); in view, it and what is above it are read
            const shown = inView(m.id);
            if (shown)
                viewed();
            return shown;
        },
        showTyping(active) {
            if (typing.dataset.active === String(active))
                return;
            typing.dataset.active = String(active);
            replace(typing, active && [h('span', { class: 'chat-typing-name' }, peer().nickname), ' is typing',
                h('span', { class: 'chat-dots', 'aria-hidden': 'true' }, h('span', null, '.'), h('span', null, '.'), h('span', null, '.'))]);
        },
        drawPeer,
        renderPending,
        newestId,
        viewed,
        /** What is written in the composer and not sent. */
        draft: () => input.value,
        focus(what) {
            (what === 'input' ? input : title).focus();
        },
        destroy() {
            gone = true;
            stopWatching();
        },
    };
}
