/*
 * The frame every view lives in: a skip link, the site header, the <main> the views render into,
 * and a footer that shows the state of the live connection.
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
 *   setConnection: shows 'offline', 'connecting' or 'online' in the footer
 * The header and footer are siblings of main, not children, so they stay the page's banner and
 * contentinfo landmarks.
 */
export function mountShell(main, { title }) {
    const state = h('span', { class: 'connection', role: 'status' });
    const header = h('header', { class: 'site-header' },
        h('a', { class: 'brand', href: '/' },
            h('img', { class: 'brand-mark', src: '/favicon.svg', alt: '', width: 28, height: 28 }),
            title));
    const footer = h('footer', { class: 'site-footer' },
        h('p', null, 'Connection: ', state));

    main.before(h('a', { class: 'skip-link', href: `#${main.id}` }, 'Skip to content'), header);
    main.after(footer);
    replace(main);

    function setConnection(name) {
        if (!(name in CONNECTION_LABELS))
            throw new RangeError(`unknown connection state: ${name}`);
        state.dataset.state = name;
        state.textContent = CONNECTION_LABELS[name];
    }
    setConnection('offline');

    return { view: main, setConnection };
}
