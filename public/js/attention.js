/*
 * Attention while the reader is away: the unread count in the tab's title ("(3) Forum · forumd"),
 * and desktop notifications of messages for them while the tab is hidden. Notifications are opt-in:
 * the browser's permission is asked for only after a click on the footer's control that says so,
 * and the choice is remembered in this browser (localStorage); a tab on screen never notifies.
 */
import { h } from './dom.js';

const STORAGE_KEY = 'forumd.notifications';
const BODY_MAX = 160;

/**
 * createAttention({footer, siteTitle}) adds the notifications control to footer and returns
 *   setViewTitle(text): the view's title, shown as "TEXT · SITE" (with the count before it)
 *   setUnread(n):       the unread messages of the signed-in user
 *   setSignedIn(bool):  the control is offered only to someone signed in
 *   notify(title, body, tag): a desktop notification, when opted in and the tab is hidden
 */
export function createAttention({ footer, siteTitle }) {
    const supported = typeof Notification === 'function';
    let viewTitle = '';
    let unread = 0;
    let signedIn = false;
    const toggle = h('button', { type: 'button', class: 'button button-quiet notify-toggle', hidden: true, onclick: toggleClicked });
    footer.append(toggle);

    function renderTitle() {
        document.title = `${unread > 0 ? `(${unread}) ` : ''}${viewTitle} · ${siteTitle}`;
    }

    function wanted() {
        try {
            return localStorage.getItem(STORAGE_KEY) === 'on';
        } catch {
            return false; // storage refused (private mode, policy): no opt-in to remember
        }
    }

    function setWanted(on) {
        try {
            if (on)
                localStorage.setItem(STORAGE_KEY, 'on');
            else
                localStorage.removeItem(STORAGE_KEY);
        } catch {
            // nothing to remember it in; the permission alone does not turn them on
        }
    }

    const active = () => supported && Notification.permission === 'granted' && wanted();

    function renderToggle() {
        toggle.hidden = !supported || !signedIn;
        if (toggle.hidden)
            return;
        const blocked = Notification.permission === 'denied';
        toggle.disabled = blocked;
        toggle.textContent = blocked ? 'Desktop notifications are blocked by this browser'
            : active() ? 'Turn off desktop notifications' : 'Turn on desktop notifications';
    }

    async function toggleClicked() {
        if (active()) {
            setWanted(false);
        } else {
            const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
            setWanted(permission === 'granted');
        }
        renderToggle();
    }

    return {
        setViewTitle(text) {
            viewTitle = text;
            renderTitle();
        },
        setUnread(n) {
            unread = Number.isInteger(n) && n > 0 ? n : 0;
            renderTitle();
        },
        setSignedIn(on) {
            signedIn = on;
            if (!on)
                unread = 0;
            renderToggle();
            renderTitle();
        },
        notify(title, body, tag) {
            if (!active() || document.visibilityState !== 'hidden')
                return;
            const text = String(body ?? '');
            const note = new Notification(title, { body: text.length > BODY_MAX ? `${text.slice(0, BODY_MAX - 1)}…` : text, tag });
            note.onclick = () => {
                window.focus();
                note.close();
            };
        },
    };
}
