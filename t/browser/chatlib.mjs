/*
 * What the browser tests of the chat share: members registered in a page's context, polling, and what the
 * chat panel of a page shows. Imported by the browser tests of the chat, the rooms, the layout and
several nodes.
 */

/** Registers a member in the page's context (the context keeps the session cookie); returns the user. */
export async function register(page, base, nickname) {
    const res = await page.context().request.post(`${base}/api/auth/register`, {
        data: {
            nickname, email: `${nickname}@example.org`, password: 'password for tests', first_name: 'Test',
            last_name: 'Member', age: 30, gender: 'other',
        },
    });
    if (res.status() !== 201)
        throw new Error(`register ${nickname}: ${res.status()} ${await res.text()}`);
    return (await res.json()).user;
}

/** GET /api/users as the page's member. */
export async function serverUsers(page, base) {
    const res = await page.context().request.get(`${base}/api/users`);
    return (await res.json()).users;
}

/** Polls fn() (in node) until it returns something truthy or the time is up; returns its last value. */
export async function until(fn, timeout = 5_000, every = 50) {
    const deadline = Date.now() + timeout;
    let value = await fn();
    while (!value && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, every));
        value = await fn();
    }
    return value;
}

export const listNames = (page) => page.$$eval('.chat-user-list .chat-user', (els) =>
    els.map((el) => el.querySelector('.chat-user-name').textContent));

export const userState = (page, id) => page.evaluate((id) => {
    const li = document.querySelector(`.chat-user[data-user-id="${id}"]`);
    if (!li)
        return null;
    const badge = li.querySelector('.chat-badge');
    return { online: li.dataset.online, badge: badge.hidden ? '' : badge.firstChild.textContent };
}, id);

export const openWith = (page, user) => page.click(`.chat-user[data-user-id="${user.id}"] .chat-user-button`);

export const typingShown = (page) => page.evaluate(() => {
    const el = document.querySelector('.chat-conversation .chat-typing');
    return el && el.dataset.active === 'true' && el.checkVisibility({ visibilityProperty: true }) ? el.textContent : null;
});

/** The messages of the open conversation: [{id, author, time, datetime, body}] in page order. */
export const shownMessages = (page) => page.$$eval('.chat-conversation .chat-messages > li[data-id]', (els) => els.map((li) => ({
    id: Number(li.dataset.id),
    author: li.querySelector('.chat-message-author')?.textContent,
    time: li.querySelector('time')?.textContent,
    datetime: li.querySelector('time')?.getAttribute('datetime'),
    title: li.querySelector('time')?.title,
    body: li.querySelector('.chat-message-body')?.textContent,
})));

export const countBody = async (page, body) => (await shownMessages(page)).filter((m) => m.body === body).length;
