/*
 * The live connection: one WebSocket to /ws on this page's host (wss: under https:), dispatching
 * each frame to the handlers registered for its `type`, and reconnecting after a close with
 * exponential backoff and jitter, capped at MAX_DELAY_MS.
 *
 * A close that looks like a lost session (the upgrade refused before the socket opened, or the
 * server closing with 1008 after a logout or when the session expired) is put to checkAuth()
 * first; when it answers false the socket stops instead of retrying.
 *
 * The URL's query comes from params() on every attempt, so resuming later is one option:
 * params: () => ({ after: lastSeenId }).
 */
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
const FIRST_MINUTE_MAX_MS = 5_000;
const FIRST_MINUTE_MS = 60_000;
const STABLE_MS = 10_000;        // a connection that lasted this long resets the backoff
const PING_EVERY_MS = 25_000;    // our own ping: the browser hides the server's pings from scripts
const SILENCE_LIMIT_MS = 60_000; // no frame at all for this long: the connection is dead
const POLICY_VIOLATION = 1008;

export class LiveSocket {
    #path;
    #params;
    #onState;
    #checkAuth;
    #handlers = new Map();
    #ws = null;
    #run = 0;          // bumped by start() and stop(): callbacks of an older run do nothing
    #running = false;
    #attempt = 0;
    #retryTimer = 0;
    #pingTimer = 0;
    #lastHeard = 0;
    #waitingForAuth = false;
    #offlineSince = 0; // when the connection was lost (0: online, or not started)

    /**
     * path: '/ws'; params(): the query as an object; onState(name): 'offline', 'connecting' or
     * 'online' (after the hello frame) while started, 'stopped' after stop(); checkAuth(): resolves
     * to false when the session is gone.
     */
    constructor({ path = '/ws', params = () => ({}), onState = () => {}, checkAuth = async () => true } = {}) {
        this.#path = path;
        this.#params = params;
        this.#onState = onState;
        this.#checkAuth = checkAuth;
        window.addEventListener('online', () => this.retryNow());
        document.addEventListener('visibilitychange', () => {
            if (document.visibilityState === 'visible')
                this.retryNow();
        });
    }

    /** While waiting to reconnect: reconnects at once. Does nothing when connected or stopped. */
    retryNow() {
        if (!this.#running || this.#ws !== null || this.#waitingForAuth)
            return;
        clearTimeout(this.#retryTimer);
        this.#connect(this.#run);
    }

    /** Calls handler(frame) for every frame of this type; returns the function that unsubscribes. */
    on(type, handler) {
        if (!this.#handlers.has(type))
            this.#handlers.set(type, new Set());
        this.#handlers.get(type).add(handler);
        return () => this.#handlers.get(type).delete(handler);
    }

    /** Sends a frame if the socket is open; returns whether it was handed to the socket. */
    send(frame) {
        if (this.#ws?.readyState !== WebSocket.OPEN)
            return false;
        this.#ws.send(JSON.stringify(frame));
        return true;
    }

    start() {
        if (this.#running)
            return;
        this.#running = true;
        this.#run += 1;
        this.#attempt = 0;
        this.#offlineSince = 0;
        this.#connect(this.#run);
    }

    /** Closes the socket for good (until the next start()). */
    stop() {
        this.#running = false;
        this.#run += 1;
        clearTimeout(this.#retryTimer);
        clearInterval(this.#pingTimer);
        const ws = this.#ws;
        this.#ws = null;
        ws?.close(1000);
        this.#onState('stopped');
    }

    #url() {
        const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
        const query = new URLSearchParams(this.#params()).toString();
        return `${scheme}//${location.host}${this.#path}${query ? `?${query}` : ''}`;
    }

    #connect(run) {
        this.#onState('connecting');
        const ws = new WebSocket(this.#url());
        const conn = { ws, openedAt: 0 };
        this.#ws = ws;
        ws.addEventListener('open', () => {
            conn.openedAt = Date.now();
            this.#lastHeard = conn.openedAt;
            clearInterval(this.#pingTimer);
            this.#pingTimer = setInterval(() => this.#heartbeat(conn, run), PING_EVERY_MS);
        });
        ws.addEventListener('message', (event) => {
            if (this.#ws === ws)
                this.#receive(event.data);
        });
        ws.addEventListener('close', (event) => this.#closed(conn, run, event.code));
    }

    #heartbeat(conn, run) {
        if (this.#ws !== conn.ws)
            return;
        if (Date.now() - this.#lastHeard > SILENCE_LIMIT_MS) {
            // a dead network can keep close() pending for minutes: give up on it right away
            this.#closed(conn, run, 1006);
            conn.ws.close();
        } else {
            this.send({ type: 'ping' });
        }
    }

    #receive(data) {
        this.#lastHeard = Date.now();
        let frame;
        try {
            frame = JSON.parse(data);
        } catch {
            return;
        }
        if (frame?.type === 'hello') {
            this.#offlineSince = 0;
            this.#onState('online');
        }
        for (const handler of this.#handlers.get(frame?.type) ?? []) {
            try {
                handler(frame);
            } catch (err) {
                reportError(err); // one broken handler must not starve the others
            }
        }
    }

    async #closed(conn, run, code) {
        if (this.#ws !== conn.ws || run !== this.#run)
            return; // replaced or stopped already
        this.#ws = null;
        clearInterval(this.#pingTimer);
        this.#onState('offline');
        const now = Date.now();
        if (!this.#offlineSince)
            this.#offlineSince = now;
        if (conn.openedAt && now - conn.openedAt >= STABLE_MS)
            this.#attempt = 0;
        if (!conn.openedAt || code === POLICY_VIOLATION) {
            this.#waitingForAuth = true;
            const authenticated = await this.#checkAuth();
            this.#waitingForAuth = false;
            if (!authenticated || run !== this.#run)
                return;
        }
        const cap = Date.now() - this.#offlineSince < FIRST_MINUTE_MS ? FIRST_MINUTE_MAX_MS : MAX_DELAY_MS;
        const ceiling = Math.min(cap, BASE_DELAY_MS * 2 ** Math.min(this.#attempt, 16));
        this.#attempt += 1;
        // half fixed, half random: clients that lost the server together do not return together
        const delay = ceiling / 2 + Math.random() * (ceiling / 2);
        this.#retryTimer = setTimeout(() => {
            if (run === this.#run)
                this.#connect(run);
        }, delay);
    }
}
