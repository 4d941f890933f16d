/*
 * The frame every view lives in: a skip link, the site header (with the signed-in navigation), a
 * notice line for app-level messages, the <main> the views render into, a footer that shows
 * the state of the live connection (only while there is one: not on the login page), and a banner
 * "Reconnecting… Retry now" once the connection has been down for BANNER_DELAY_MS. The banner is
 * fixed over the page's bottom edge so showing it moves nothing.
 */
import { h, replace } from './dom.js';

// a blip shorter than this (a server restart, a proxy's reload) is not worth a banner
const BANNER_DELAY_MS = 2_000;

const CONNECTION_LABELS = {
    stopped: '',
    offline: 'offline',
    connecting: 'connecting…',
    online: 'online',
};

/**
 * Builds the shell around main (the page's <main id="app">) and returns
 *   view:          main itself, emptied; a view puts its content here with replace()
 *   setNav:        fills the header's navigation with nodes, or hides it when given nothing
 *   notify:        shows a short app-level message above main (an empty text hides it)
 *   setConnection: shows 'offline', 'connecting' or 'online' in the footer; 'stopped' hides it
 *   onRetry:       the function the banner's "Retry now" calls
 *   footer:        the footer, for controls that belong there
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
    const connectionLine = h('p', { class: 'connection-line', hidden: true }, 'Connection: ', state);
    const footer = h('footer', { class: 'site-footer' }, connectionLine);
    let retry = () => {};
    const banner = h('div', { class: 'connection-banner', role: 'status', hidden: true },
        h('span', null, 'Reconnecting…'),
        h('button', { type: 'button', class: 'button button-quiet', onclick: () => retry() }, 'Retry now'));
    let bannerTimer = 0;
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
    main.after(aside, footer, banner);
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
        connectionLine.hidden = name === 'stopped';
        // the banner waits from the first moment down, and goes as soon as the connection is back
        if (name === 'online' || name === 'stopped') {
            clearTimeout(bannerTimer);
            bannerTimer = 0;
            banner.hidden = true;
        } else if (!bannerTimer && banner.hidden) {
            bannerTimer = setTimeout(() => {
                bannerTimer = 0;
                banner.hidden = false;
            }, BANNER_DELAY_MS);
        }
    }
    setConnection('stopped');

    function onRetry(fn) {
        retry = fn;
    }

    return { view: main, aside, footer, setNav, notify, setConnection, onRetry };
}
