/*
 * Times the way a chat shows them: "just now", "2 min ago", "3 h ago", "yesterday", then the date,
 * with the full date and time in the title (and the exact instant in datetime). Every such <time>
 * on the page is rewritten once a minute, so "just now" does not stay "just now"; one timer serves
 * them all and stops when none is left.
 */
import { h } from '../dom.js';

const REFRESH_MS = 30_000;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const full = (d) => d.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'short' });
const startOfDay = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();

/** The short text for the instant d, seen at now. */
export function ago(d, now = new Date()) {
    const ms = now - d;
    if (ms < 45_000)
        return 'just now';
    if (ms < HOUR)
        return relative.format(-Math.max(1, Math.round(ms / MINUTE)), 'minute');
    if (ms < 12 * HOUR || startOfDay(d) === startOfDay(now))
        return relative.format(-Math.round(ms / HOUR), 'hour');
    const days = Math.round((startOfDay(now) - startOfDay(d)) / DAY);
    if (days < 7)
        return relative.format(-days, 'day');
    return d.toLocaleDateString(undefined, { dateStyle: 'medium' });
}

/** The heading of a day in a log: "Today", "Yesterday", or the date. */
export function dayLabel(d, now = new Date()) {
    const days = Math.round((startOfDay(now) - startOfDay(d)) / DAY);
    if (days === 0)
        return 'Today';
    if (days === 1)
        return 'Yesterday';
    return d.toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

/** The local day of an ISO instant, as YYYY-MM-DD (what separates days in a log). */
export function dayKey(iso) {
    const d = new Date(iso);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

let timer = null;

function refresh() {
    const now = new Date();
    const all = document.querySelectorAll('time[data-relative]');
    for (const el of all)
        el.textContent = ago(new Date(el.dateTime), now);
    if (all.length === 0) {
        clearInterval(timer);
        timer = null;
    }
}

/** A <time> for the ISO instant iso that keeps its relative text up to date; attrs add to it. */
export function timeAgo(iso, attrs = {}) {
    const d = new Date(iso);
    if (timer === null)
        timer = setInterval(refresh, REFRESH_MS);
    return h('time', { ...attrs, datetime: iso, title: full(d), 'data-relative': '' }, ago(d));
}
