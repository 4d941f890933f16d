/*
 * Entry point of the client: builds the shell into <main id="app"> and shows the first view.
 * Loaded as a module, so it runs after the document is parsed and in strict mode.
 */
import { h, replace } from './js/dom.js';
import { mountShell } from './js/shell.js';

const TITLE = 'forumd';

function homeView() {
    return h('section', { class: 'home', 'aria-labelledby': 'home-title' },
        h('h1', { id: 'home-title' }, TITLE),
        h('p', { class: 'lead' },
            'A forum that updates as people write: posts and comments by category, ',
            'who is online, and private messages that arrive at once.'));
}

const shell = mountShell(document.getElementById('app'), { title: TITLE });
replace(shell.view, homeView());
// The shell starts 'offline'; the live connection (a WebSocket) will drive shell.setConnection().
