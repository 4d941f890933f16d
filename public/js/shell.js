/*
 * The frame every view lives in: a skip link, the site header (with the signed-in navigation), a
 * notice line for app-level messages, the <main> the views render into, and a footer that shows
 * the state of the live connection.
 */
import { h, replace } from './dom.js';

const CONNECTION_LABELS = {
    offline: 'offline',
    connecting: 'connecting…',
    online: 'online',
};

/**
 * Builds the shell around main (the page's <main id="app">) and returns
 *   view:          main itself, emptied; a view puts its content here with replace()
 *   setNav:        fills the header's navigation with nodes, or hides it when given nothing
 *   notify:        shows a short app-level message above main (an empty text hides it)
 *   setConnection: shows 'offline', 'connecting' or 'online' in the footer
 *   aside:         an empty <aside> beside main for signed-in panels (the chat); hidden until one fills it
 * The header and footer are siblings of main, not children, so they stay the page's banner and
 * contentinfo landmarks.
 */
export function mountShell(main, { title }) {
    const state = h('span', { class: 'connection', role: 'status' });
    const nav = h('nav', { class: 'site-nav', 'aria-label': 'Main', hidden: true });
    const notice = h('p', { class: 'notice', role: 'alert', hidden: true });
    const header = h('header', { class: 'site-header' },
        h('a', { class: 'brand', href: '#/' },
            h('img', { class: 'brand-mark', src: new URL('../favicon.svg', import.meta.url).href, alt: '', width: 28, height: 28 }),
            title),
        nav);
    const footer = h('footer', { class: 'site-footer' },
        h('p', null, 'Connection: ', state));
    // the views live in the URL's hash (#/login), so the skip link moves focus without touching it
    const skip = h('a', {
        class: 'skip-link',
        href: `#${main.id}`,
        onclick: (event) => {
            event.preventDefault();
            main.focus();
        },
    }, 'Skip to content');

    main.before(skip, header, notice);
    const aside = h('aside', { class: 'site-aside', hidden: true });
    main.after(aside, footer);
    replace(main);

    function setNav(...children) {
        replace(nav, children);
        nav.hidden = nav.childNodes.length === 0;
    }

    function notify(text) {
        notice.textContent = text || '';
        notice.hidden = !text;
    }

    function setConnection(name) {
        if (!(name in CONNECTION_LABELS))
            throw new RangeError(`unknown connection state: ${name}`);
        state.dataset.state = name;
        state.textContent = CONNECTION_LABELS[name];
    }
    setConnection('offline');

    return { view: main, aside, setNav, notify, setConnection };
}
