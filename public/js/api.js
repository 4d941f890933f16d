/*
 * fetch() for forumd's JSON API. Every call sends the session cookie (same origin), a body goes as
 * JSON with its Content-Type, and the answer is {status, json, headers} whatever the HTTP status:
 * callers look at status. A network failure is status 0. Nothing here throws.
 */

/** api('POST', '/api/auth/login', {login, password}) → {status, json (or null), headers}. */
export async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    try {
        const res = await fetch(path, init);
        let json = null;
        if ((res.headers.get('Content-Type') || '').includes('json'))
            json = await res.json().catch(() => null);
        return { status: res.status, json, headers: res.headers };
    } catch {
        return { status: 0, json: null, headers: new Headers() };
    }
}

/** Turns the server's lower-case fragment ("must be 3 to 32 characters") into a sentence. */
export function sentence(text) {
    const s = String(text).trim();
    if (!s)
        return '';
    return s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
}

/**
 * The error of a failed answer as {code, field, message}, where message is a sentence a person
 * can act on: the server's own where it is meant for people, a plain explanation otherwise.
 */
export function errorOf(res) {
    const err = res.json?.error ?? {};
    const out = { code: err.code ?? 'unknown', field: err.field ?? null, message: sentence(err.message || '') };
    if (res.status === 0) {
        out.message = 'The server cannot be reached. Check your connection and try again.';
    } else if (res.status === 429) {
        const wait = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
        out.message = Number.isFinite(wait) && wait > 0
            ? `Too many attempts. Try again in ${wait} second${wait === 1 ? '' : 's'}.`
            : 'Too many attempts. Try again in a minute.';
    } else if (res.status === 503) {
        out.message = 'The server is busy right now. Try again in a moment.';
    } else if (res.status >= 500) {
        out.message = 'Something went wrong on the server. Try again.';
    } else if (!out.message) {
        out.message = `The server gave an unexpected answer (${res.status}).`;
    }
    return out;
}
