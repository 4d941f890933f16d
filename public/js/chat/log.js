/*
 * What private conversations and rooms share in their message logs: how a log reads (a line for
 * each new day, consecutive messages from one sender grouped under one name, the "New messages"
 * line above the first unread one) and when older messages are wanted.
 *
 * Older messages are wanted only when the reader goes up: a scroll or a wheel turn upward near the
 * top, a finger pulling down there, or ArrowUp/PageUp/Home from the top. A log too short to scroll
 * still gets wheel, touch and key events, so it can grow on demand; nothing loads by itself.
 */
import { h } from '../dom.js';
import { dayKey, dayLabel } from './times.js';

// a sender's messages closer together than this share one heading
const GROUP_MS = 5 * 60_000;
// at most one request for older messages this often, however fast the wheel turns
const THROTTLE_MS = 250;

/**
 * Redraws the day lines, the groups and the "New messages" line of ol, whose message items
 * (li[data-id]) carry data-from (the sender's id) and data-at (the ISO instant); firstUnread is the
 * id the new messages line goes above (null: none). The lines are items of their own (li.chat-sep),
 * between the messages, so they span the log rather than a message's bubble.
 */
export function decorate(ol, firstUnread = null) {
    ol.querySelectorAll(':scope > li.chat-sep').forEach((li) => li.remove());
    let prev = null;
    for (const li of [...ol.querySelectorAll(':scope > li[data-id]')]) {
        const newDay = !prev || dayKey(prev.dataset.at) !== dayKey(li.dataset.at);
        const isFirstUnread = firstUnread !== null && Number(li.dataset.id) === firstUnread;
        if (newDay)
            li.before(h('li', { class: 'chat-sep chat-day' }, h('span', null, dayLabel(new Date(li.dataset.at)))));
        if (isFirstUnread)
            li.before(h('li', { class: 'chat-sep chat-new-line' }, h('span', null, 'New messages')));
        const grouped = !newDay && !isFirstUnread && prev.dataset.from === li.dataset.from
            && new Date(li.dataset.at) - new Date(prev.dataset.at) < GROUP_MS;
        li.dataset.grouped = String(grouped);
        prev = li;
    }
}

/**
 * Calls want() when the reader of log goes up near its top (nearTop px), at most once per
 * THROTTLE_MS. Returns the function that stops watching.
 */
export function watchUpward(log, nearTop, want) {
    let last = -Infinity;
    let touchY = null;
    let lastTop = log.scrollTop; // only a scroll upward counts: not the jump to the newest, nor a page kept in place
    const fire = () => {
        const now = performance.now();
        if (now - last < THROTTLE_MS)
            return;
        last = now;
        want();
    };
    const atTop = () => log.scrollTop < nearTop;
    const listeners = {
        scroll: () => {
            const up = log.scrollTop < lastTop;
            lastTop = log.scrollTop;
            if (up && atTop())
                fire();
        },
        wheel: (event) => event.deltaY < 0 && atTop() && fire(),
        touchstart: (event) => {
            touchY = event.touches[0]?.clientY ?? null;
        },
        touchmove: (event) => {
            const y = event.touches[0]?.clientY;
            if (touchY !== null && y > touchY + 8 && atTop())
                fire();
        },
        keydown: (event) => {
            if (event.target === log && ['ArrowUp', 'PageUp', 'Home'].includes(event.key) && atTop())
                fire();
        },
    };
    for (const [name, fn] of Object.entries(listeners))
        log.addEventListener(name, fn, { passive: true });
    return () => {
        for (const [name, fn] of Object.entries(listeners))
            log.removeEventListener(name, fn);
    };
}
