/*
 * Browser test of several nodes behind a proxy: zack and bob, each in a browser context of their own, reach
 * the forum through one HAProxy that spreads requests and WebSockets over three forumd nodes (one PostgreSQL,
 * one Redis). With their live connections on two different nodes they see each other online, see each other
 * typing and chat. Then the node that holds bob's connection is killed in mid-conversation: his page
 * reconnects through HAProxy to a node still up and shows every message zack sent meanwhile, once. TAP on
 * stdout.
 *
 *   node t/browser/cluster.mjs https://127.0.0.1:PORT PORT:PID,PORT:PID,PORT:PID
 *
 * Each PORT:PID is a node's plain port (its /_status says how many WebSockets it holds) and its process.
 */
import { check, newPage, runTests } from './lib.mjs';
import { countBody, openWith, register, typingShown, until, userState } from './chatlib.mjs';

const RECONNECT_MS = 20_000;
const tag = `${process.pid % 1000}${Date.now() % 100_000}`;
const nodes = (process.argv[3] || '').split(',').filter(Boolean).map((s) => {
    const [port, pid] = s.split(':').map(Number);
    return { port, pid };
});

/** The WebSockets each node holds now (null for one that does not answer). */
async function sockets() {
    return Promise.all(nodes.map(async (node) => {
        try {
            const res = await fetch(`http://127.0.0.1:${node.port}/_status`);
            return (await res.json()).connections.websocket;
        } catch {
            return null;
        }
    }));
}

const nodeOfPage = new Map();

/**
 * Loads the app in `page` and returns the index of the node its WebSocket landed on (the one that gained it).
 * A page loaded before leaves first and its socket's node is seen to lose it: a reload whose new socket lands on
 * the node of the old one would otherwise gain nothing anywhere.
 */
async function loadOn(page, base) {
    if (nodeOfPage.has(page)) {
        const was = nodeOfPage.get(page);
        const open = (await sockets())[was];
        await page.goto('about:blank');
        await until(async () => (await sockets())[was] < open);
    }
    const before = await sockets();
    await page.goto(`${base}/`);
    await page.waitForSelector('.site-aside .chat-title');
    let node = -1;
    await until(async () => {
        const now = await sockets();
        node = now.findIndex((n, i) => n !== null && n > before[i]);
        return node >= 0;
    });
    nodeOfPage.set(page, node);
    return node;
}

async function run(base, browser) {
    check(nodes.length === 3, 'three nodes to spread over', process.argv[3]);
    const a = await newPage(browser);
    const b = await newPage(browser);
    const zack = await register(a, base, `zack_${tag}`);
    const bob = await register(b, base, `bob_${tag}`);

    const aNode = await loadOn(a, base);
    let bNode = await loadOn(b, base);
    for (let tries = 0; bNode === aNode && tries < 6; ++tries)
        bNode = await loadOn(b, base); // the proxy spreads WebSockets in turn: the next one lands elsewhere
    check(aNode >= 0 && bNode >= 0 && aNode !== bNode, 'zack\'s and bob\'s live connections are on two different nodes',
          `zack on ${aNode}, bob on ${bNode}`);

    const online = await until(async () => (await userState(a, bob.id))?.online === 'true'
                                          && (await userState(b, zack.id))?.online === 'true');
    check(online, 'each sees the other online');

    await openWith(a, bob);
    await openWith(b, zack);
    await a.focus('#chat-input');
    await a.keyboard.type('Hel', { delay: 40 });
    const typing = await until(() => typingShown(b), 3_000);
    check(typing && typing.includes(zack.nickname), 'bob sees zack typing, across nodes', `shown: ${typing}`);
    await a.fill('#chat-input', 'Hello bob, from another node');
    await a.press('#chat-input', 'Enter');
    check(await until(async () => await countBody(b, 'Hello bob, from another node') === 1), 'bob gets zack\'s message');
    await b.fill('#chat-input', 'Hello zack');
    await b.press('#chat-input', 'Enter');
    check(await until(async () => await countBody(a, 'Hello zack') === 1), 'zack gets bob\'s answer');

    // bob's node dies; zack goes on writing
    process.kill(nodes[bNode].pid, 'SIGKILL');
    const meanwhile = ['are you still there?', 'your node went away', 'this should reach you once'];
    for (const body of meanwhile) {
        await a.fill('#chat-input', body);
        await a.press('#chat-input', 'Enter');
        check(await until(async () => await countBody(a, body) === 1, 10_000), `zack's "${body}" is stored (his node lives)`);
    }
    const caught = await until(async () => {
        for (const body of meanwhile)
            if (await countBody(b, body) !== 1)
                return false;
        return true;
    }, RECONNECT_MS, 200);
    const counts = await Promise.all(meanwhile.map((body) => countBody(b, body)));
    check(caught, 'bob\'s page reconnects to another node and shows each of the three once', `counts: ${counts}`);
    check(await countBody(b, 'Hello bob, from another node') === 1 && await countBody(b, 'Hello zack') === 1,
          'and the conversation before it, once');
    const back = await until(async () => (await userState(a, bob.id))?.online === 'true', RECONNECT_MS);
    check(back, 'zack sees bob online, on his new node');
}

process.exit(await runTests('cluster.mjs', run, { timeoutMs: 120_000 }));
