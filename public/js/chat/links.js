/*
 * Web addresses in a message become links. Only http: and https: (an address is taken up to the
 * next space, less the punctuation that usually ends a sentence); every link opens in a new tab
 * without telling the target where it came from or lending it this page (noopener noreferrer), and
 * is marked as not endorsed (nofollow). Built as DOM nodes: the text never meets an HTML parser.
 */
import { h } from '../dom.js';

const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'"»”’)\]}]+$/;

/** A usable http(s) URL for text, or null. */
function webUrl(text) {
    try {
        const url = new URL(text);
        return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
    } catch {
        return null;
    }
}

const count = (s, ch) => s.split(ch).length - 1;

/**
 * The address without the punctuation after it, except a closing bracket that belongs to it:
 * "(see https://x.org/a_(b))." keeps one ")".
 */
function trimmed(raw) {
    let tail = raw.match(TRAILING)?.[0] ?? '';
    let kept = raw.slice(0, raw.length - tail.length);
    while (tail.startsWith(')') && count(kept, '(') > count(kept, ')')) {
        kept += ')';
        tail = tail.slice(1);
    }
    return kept;
}

/**
 * The nodes for text: its addresses as <a>, the rest passed through plain(piece), which returns
 * what stands for a piece of ordinary text (itself by default, or nodes such as mention marks).
 */
export function withLinks(text, plain = (s) => s) {
    const out = [];
    let at = 0;
    for (const m of text.matchAll(URL_RE)) {
        const raw = trimmed(m[0]);
        const url = webUrl(raw);
        if (!url)
            continue;
        out.push(plain(text.slice(at, m.index)));
        out.push(h('a', { href: url.href, rel: 'noopener noreferrer nofollow', target: '_blank', class: 'chat-link' }, raw));
        at = m.index + raw.length;
    }
    out.push(plain(text.slice(at)));
    return out;
}
