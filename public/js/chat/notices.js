/*
 * Short in-page notices for messages that arrive while their conversation is not on screen. The
 * stack is one role=status live region that stays in the page, so screen readers announce what is
 * added to it. A notice names the sender, offers to open the conversation, has a close button, and
 * hides itself after SHOW_MS; the clock stops while the pointer or the focus is on it. One notice per
 * sender: a second message updates theirs instead of stacking up.
 */
import { h, replace } from '../dom.js';

const SHOW_MS = 6_000;
const MAX_SHOWN = 3;
const PREVIEW_CHARS = 80;

function preview(body) {
    const line = body.replace(/\s+/g, ' ').trim();
    return line.length > PREVIEW_CHARS ? `${line.slice(0, PREVIEW_CHARS - 1)}…` : line;
}

/** createNotices(onOpen): onOpen(userId) opens that conversation. Returns {node, show, dismiss, clear}. */
export function createNotices(onOpen) {
    const node = h('div', { class: 'chat-notices', role: 'status' });
    const shown = new Map(); // userId → {el, count, timer}

    function dismiss(userId) {
        const notice = shown.get(userId);
        if (!notice)
            return;
        clearTimeout(notice.timer);
        shown.delete(userId);
        const hadFocus = notice.el.contains(document.activeElement);
        notice.el.remove();
        if (hadFocus)
            document.getElementById('app')?.focus();
    }

    function arm(userId) {
        const notice = shown.get(userId);
        clearTimeout(notice.timer);
        notice.timer = setTimeout(() => dismiss(userId), SHOW_MS);
    }

    /** A message from sender ({id, nickname}) with this body. */
    function show(sender, body) {
        let notice = shown.get(sender.id);
        if (!notice) {
            const text = h('p', { class: 'chat-notice-text' });
            const el = h('div', { class: 'chat-notice', 'data-user-id': sender.id },
                text,
                h('button', {
                    type: 'button',
                    class: 'chat-notice-close',
                    'aria-label': `Dismiss the notice about ${sender.nickname}`,
                    title: 'Dismiss',
                    onclick: () => dismiss(sender.id),
                }, '×'),
                h('p', { class: 'chat-notice-preview', dir: 'auto' }),
                h('button', {
                    type: 'button',
                    class: 'button chat-notice-open',
                    onclick: () => {
                        dismiss(sender.id);
                        onOpen(sender.id);
                    },
                }, 'Open the conversation'));
            const pause = () => clearTimeout(shown.get(sender.id)?.timer);
            const resume = () => {
                if (shown.has(sender.id) && !el.matches(':hover') && !el.contains(document.activeElement))
                    arm(sender.id);
            };
            el.addEventListener('mouseenter', pause);
            el.addEventListener('focusin', pause);
            el.addEventListener('mouseleave', resume);
            el.addEventListener('focusout', () => setTimeout(resume));
            notice = { el, text, count: 0, timer: 0 };
        }
        shown.delete(sender.id); // the Map's order is the order of the latest messages
        shown.set(sender.id, notice);
        notice.count += 1;
        const what = notice.count === 1 ? 'a message' : `${notice.count} messages`;
        replace(notice.text, h('strong', { class: 'chat-notice-name', dir: 'auto' }, sender.nickname), ` sent you ${what}`);
        notice.el.querySelector('.chat-notice-preview').textContent = preview(body);
        node.prepend(notice.el); // the newest on top; an updated notice moves up again
        arm(sender.id);
        while (shown.size > MAX_SHOWN)
            dismiss(shown.keys().next().value);
    }

    return {
        node,
        show,
        dismiss,
        clear() {
            for (const id of [...shown.keys()])
                dismiss(id);
        },
    };
}
