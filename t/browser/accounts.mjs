/*
 * Browser test of accounts: register (with a server validation error first), the forum view and
 * its live connection, log out, log in by email, reload, the account view, Back and Forward, a
 * new member arriving live in another context, and a second tab following a logout. TAP on stdout.
 *
 *   node t/browser/accounts.mjs https://127.0.0.1:PORT
 *
 * The server must allow only LOGIN_LIMIT failed logins a minute (auth settings login-limit: 2, as
 * t/61-browser-accounts.t starts it): the last steps show the 401 and then the 429 of a wrong
 * password. FORUMD_SCREENSHOT_DIR=DIR also saves screenshots of the views at desktop and phone width.
 */
import { check, focused, list, newPage, overflow, runTests, textOf, visible, waitForText, watch } from './lib.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const LIVE_TIMEOUT_MS = 10_000;
const LOGIN_LIMIT = 2;

const tag = `${process.pid}${Date.now() % 100_000}`;
const alice = {
    nickname: `alice_${tag}`, email: `Alice.${tag}@Example.org`, password: 'correct horse battery',
    first_name: 'Alice', last_name: 'Liddell', age: '30', gender: 'female',
};
const bob = {
    nickname: `bob.${tag}`, email: `bob.${tag}@example.net`, password: 'another good one',
    first_name: 'Bob', last_name: 'Builder', age: '41', gender: 'male',
};
const REGISTER_FIELDS = ['nickname', 'email', 'password', 'first_name', 'last_name', 'age', 'gender'];
const fieldId = (name) => `register-${name.replace('_', '-')}`;

/** Saves page as DIR/NAME-desktop.png and DIR/NAME-phone.png, and checks the phone width fits. */
async function shots(page, name) {
    const dir = process.env.FORUMD_SCREENSHOT_DIR;
    const size = page.viewportSize();
    if (dir)
        await page.screenshot({ path: `${dir}/${name}-desktop.png`, fullPage: true });
    await page.setViewportSize(PHONE);
    const extra = await overflow(page);
    check(extra <= 0, `${name}: fits a 360 px screen without sideways scrolling`, `overflow: ${extra}px`);
    if (dir) {
        await page.screenshot({ path: `${dir}/${name}-phone.png`, fullPage: true });
        console.log(`# screenshots: ${dir}/${name}-{desktop,phone}.png`);
    }
    await page.setViewportSize(size);
}

async function fillRegister(page, user) {
    for (const name of REGISTER_FIELDS) {
        if (name === 'gender')
            await page.selectOption(`#${fieldId(name)}`, user[name]);
        else
            await page.fill(`#${fieldId(name)}`, user[name]);
    }
}

const hashOf = (page) => page.evaluate(() => location.hash);
const navShown = (page) => page.locator('.site-nav').isVisible();
const submit = (page, form) => page.click(`#${form} button[type="submit"]`);
const logOut = (page) => page.getByRole('button', { name: 'Log out' }).click();

/** The forum view is on screen for user, and the footer says online. */
async function checkForum(page, user, what) {
    const heading = await waitForText(page, '#app h1', `Welcome, ${user.nickname}`);
    check(heading === `Welcome, ${user.nickname}`, `${what}: the forum view welcomes ${user.nickname}`, `heading: ${heading}`);
    const hash = await hashOf(page);
    check(hash === '#/', `${what}: at #/`, `hash: ${hash}`);
    const connection = await waitForText(page, 'footer .connection', 'online', LIVE_TIMEOUT_MS);
    check(connection === 'online', `${what}: the footer says online`, `connection: ${connection}`);
}

/** The login view is on screen, and nothing of the signed-in views. */
async function checkLogin(page, what) {
    const heading = await waitForText(page, '#app h1', 'Log in');
    const hash = await hashOf(page);
    check(heading === 'Log in' && hash === '#/login', `${what}: the login view at #/login`, `heading: ${heading}; hash: ${hash}`);
    const nav = await navShown(page);
    check(!nav, `${what}: no signed-in navigation`);
    // signed out there is no live connection to speak of: the footer's line about it is gone
    const gone = await page.locator('footer .connection').waitFor({ state: 'hidden', timeout: 5000 }).then(() => true, () => false);
    check(gone, `${what}: the footer says nothing about a connection`);
}

async function registerWithAgeError(page, watcher) {
    await page.click('a[href="#/register"]');
    const shown = await visible(page, '#register-form');
    check(shown && await hashOf(page) === '#/register', '"Create an account" opens the register view at #/register');
    const labels = await page.locator('#register-form label').allTextContents();
    check(labels.join('|') === 'Nickname|Email|Password|First name|Last name|Age|Gender', 'it asks for the seven fields, each labelled',
          labels.join('|'));

    await fillRegister(page, { ...alice, age: '12' });
    watcher.expectHttpError('/api/auth/register', 422);
    await submit(page, 'register-form');
    await visible(page, '#register-age-error');
    const state = await page.evaluate((ids) => {
        const age = document.getElementById('register-age');
        const error = document.getElementById('register-age-error');
        return {
            invalid: age.getAttribute('aria-invalid'),
            describedBy: (age.getAttribute('aria-describedby') || '').split(/\s+/),
            error: error && !error.hidden ? error.textContent : null,
            besideAge: error?.closest('.field') === age.closest('.field'),
            allInvalid: [...document.querySelectorAll('[aria-invalid="true"]')].map((el) => el.id),
            values: Object.fromEntries(ids.map((id) => [id, document.getElementById(id).value])),
        };
    }, REGISTER_FIELDS.map(fieldId));
    check(state.error !== null && /13/.test(state.error) && state.besideAge, "age 12: the server's message shows next to the age field",
          `error: ${state.error}; in the age field's box: ${state.besideAge}`);
    check(state.invalid === 'true' && state.describedBy.includes('register-age-error'),
          'the age field is aria-invalid and aria-describedby its error', JSON.stringify(state));
    check(state.allInvalid.join() === 'register-age', 'no other field is marked invalid', state.allInvalid.join());
    const focus = await focused(page);
    check(focus === 'input#register-age', 'focus moves to the age field', `focus: ${focus}`);
    const expected = Object.fromEntries(REGISTER_FIELDS.map((n) => [fieldId(n), n === 'age' ? '12' : alice[n]]));
    check(JSON.stringify(state.values) === JSON.stringify(expected), 'everything typed is kept',
          `kept: ${JSON.stringify(state.values)}`);
    check(!(await navShown(page)) && await hashOf(page) === '#/register', 'still signed out, on the register view');
    const main = await page.locator('#app').innerText();
    check(!/Welcome|Members|Your account/.test(main), 'and nothing of the signed-in views is on the page', main);
    await shots(page, 'register-error');

    await page.fill('#register-age', alice.age);
    const cleared = await page.getAttribute('#register-age', 'aria-invalid');
    check(cleared === null, 'correcting the age clears its error', `aria-invalid: ${cleared}`);
    await page.evaluate(() => { window.forumdNoReload = true; });
    await submit(page, 'register-form');
    await checkForum(page, alice, 'registered');
    const same = await page.evaluate(() => window.forumdNoReload === true);
    check(same, 'registering showed the forum without reloading the page');
    const nav = await page.locator('.site-nav').innerText().catch(() => '');
    check(/Forum/.test(nav) && /Account/.test(nav) && /Log out/.test(nav), 'the header has Forum, Account and Log out', nav);
    const empty = await textOf(page, '.members .muted:not([hidden])');
    check(empty !== null && /No one has joined/.test(empty), 'the members list says honestly that nobody new has joined yet', `text: ${empty}`);
    await shots(page, 'home-empty');
}

/**
 * A tab whose socket is routed through playwright (transparently, to the real server) so the test
 * can drop it like a server going away: each time the footer goes offline, connecting, online, and
 * the waits before reconnecting grow (500 ms doubling, jittered between half and all of it).
 */
async function dropConnections(context, base) {
    const page = await context.newPage();
    const watcher = watch(page, 'routed tab');
    const sockets = [];
    await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        sockets.push({ ws, at: Date.now() });
        ws.connectToServer();
    });
    await page.goto(`${base}/`);
    await checkForum(page, alice, 'a tab whose socket the test can drop');
    await page.evaluate(() => {
        const el = document.querySelector('footer .connection');
        window.forumdStates = [];
        new MutationObserver(() => window.forumdStates.push(el.textContent)).observe(el, { childList: true });
    });
    const waits = [];
    for (let i = 0; i < 3; i++) {
        const before = sockets.length;
        const at = Date.now();
        await sockets[before - 1].ws.close({ code: 1001, reason: 'going away' });
        const back = await waitForText(page, 'footer .connection', 'online', LIVE_TIMEOUT_MS);
        waits.push(sockets.length > before ? sockets[before].at - at : null);
        if (back !== 'online')
            break;
    }
    const states = await page.evaluate(() => window.forumdStates.join(' → '));
    const cycle = 'offline → connecting… → online';
    check(states === [cycle, cycle, cycle].join(' → '), 'three dropped connections: each time offline, connecting, online again',
          `footer: ${states}`);
    const [a, b, c] = waits;
    check(a >= 250 && b >= 500 && c >= 1000 && c < 5000, 'the waits before reconnecting grow: at least 250, 500, 1000 ms',
          `waits: ${waits.join(', ')} ms`);
    await page.close();
    return watcher;
}

/** Wrong passwords: the form says so above the fields; past the limit it says when to try again. */
async function wrongPasswords(page, watcher) {
    await page.fill('#login-login', alice.nickname);
    for (let i = 1; i <= LOGIN_LIMIT; i++) {
        watcher.expectHttpError('/api/auth/login', 401);
        await page.fill('#login-password', `wrong password ${i}`);
        await page.press('#login-password', 'Enter');
        const said = await waitForText(page, '#login-form .form-error', 'Wrong nickname, email or password.');
        check(said === 'Wrong nickname, email or password.', `wrong password ${i}: the form says so`, `message: ${said}`);
        if (i === 1) {
            const focus = await focused(page);
            const kept = await page.inputValue('#login-login');
            check(focus === 'input#login-password' && kept === alice.nickname, 'focus goes to the password, the login is kept',
                  `focus: ${focus}; login: ${kept}`);
        }
        // the message must be rendered anew by the next attempt, not left over from this one
        await page.locator('#login-form .form-error').evaluate((el) => { el.textContent = ''; });
    }
    watcher.expectHttpError('/api/auth/login', 429);
    await page.fill('#login-password', 'wrong again');
    await page.press('#login-password', 'Enter');
    await page.waitForFunction(() => /Too many/.test(document.querySelector('#login-form .form-error')?.textContent ?? ''),
                               null, { timeout: 5_000 }).catch(() => {});
    const limited = await textOf(page, '#login-form .form-error');
    check(/^Too many attempts\. Try again in \d+ seconds?\.$/.test(limited ?? ''), 'past the limit: when to try again, from Retry-After',
          `message: ${limited}`);
    await shots(page, 'login-limited');
}

async function run(base, browser) {
    const a = await newPage(browser, DESKTOP);
    const wa = watch(a, 'first context');
    wa.expectHttpError('/api/auth/me', 401); // signed out at the start: expected
    await a.goto(`${base}/`);
    await checkLogin(a, 'signed out at the start');
    await shots(a, 'login');

    await registerWithAgeError(a, wa);

    await logOut(a);
    await checkLogin(a, 'logged out');

    await a.fill('#login-login', alice.email.toUpperCase());
    await a.fill('#login-password', alice.password);
    await a.press('#login-password', 'Enter');
    await checkForum(a, alice, 'logged in with the email in upper case');

    await a.reload();
    await checkForum(a, alice, 'after a reload');
    await a.evaluate(() => { window.forumdNoReload = true; });
    const wr = await dropConnections(a.context(), base);

    // a second browser context: somebody else registers, and the first context sees it live
    const b = await newPage(browser, PHONE);
    const wb = watch(b, 'second context');
    wb.expectHttpError('/api/auth/me', 401);
    await b.goto(`${base}/#/register`);
    check(await visible(b, '#register-form'), 'a signed-out page opened at #/register shows the register view');
    await fillRegister(b, { ...bob, nickname: alice.nickname.toUpperCase() });
    wb.expectHttpError('/api/auth/register', 409);
    await submit(b, 'register-form');
    const taken = await textOf(b, '#register-nickname-error:not([hidden])');
    const takenFocus = await focused(b);
    check(taken !== null && /taken/.test(taken) && takenFocus === 'input#register-nickname',
          'a nickname taken in another case: the 409 shows next to the nickname field, which gets the focus',
          `error: ${taken}; focus: ${takenFocus}`);
    await b.fill('#register-nickname', bob.nickname);
    await submit(b, 'register-form');
    await checkForum(b, bob, 'second context registered');

    const entry = a.locator('.member-list .member', { hasText: bob.nickname });
    const arrived = await entry.waitFor({ timeout: LIVE_TIMEOUT_MS }).then(() => true, () => false);
    const heading = await textOf(a, '#new-members-title');
    check(arrived && heading === 'New members', `the first context lists ${bob.nickname} under "New members", live`,
          `heading: ${heading}; list: ${await textOf(a, '.members')}`);
    const online = await waitForText(a, '.member .presence', 'online', LIVE_TIMEOUT_MS);
    check(online === 'online', 'with the presence the server reported', `presence: ${online}`);
    check(await a.evaluate(() => window.forumdNoReload === true), 'without a reload');
    await shots(a, 'forum');

    // a second tab of the second context: logging out in one tab ends the session in both
    const b2 = await b.context().newPage();
    const wb2 = watch(b2, 'second tab');
    await b2.goto(`${base}/`);
    await checkForum(b2, bob, 'a second tab of the same session');
    wb2.expectHttpError('/api/auth/me', 401); // the tab asks whether its session ended: it did
    await logOut(b);
    await checkLogin(b, 'second context logged out');
    await checkLogin(b2, 'the other tab, on its own');
    const notice = await textOf(b2, '.notice:not([hidden])');
    check(notice !== null && /session/i.test(notice), 'and says the session ended', `notice: ${notice}`);
    await shots(b2, 'session-ended');
    const offline = await waitForText(a, '.member .presence', 'offline', LIVE_TIMEOUT_MS);
    check(offline === 'offline', `the first context shows ${bob.nickname} offline`, `presence: ${offline}`);

    // the account view, Back and Forward
    await a.getByRole('link', { name: 'Account' }).click();
    await visible(a, 'dl.profile');
    const rows = await a.evaluate(() => Object.fromEntries(
        [...document.querySelectorAll('dl.profile .profile-row')].map((row) =>
            [row.querySelector('dt').textContent, row.querySelector('dd').textContent])));
    const since = rows['Member since'] ?? '';
    check(await hashOf(a) === '#/account' && await textOf(a, '#app h1') === 'Your account', 'Account opens the account view at #/account');
    check(rows.Nickname === alice.nickname && rows.Email === alice.email.toLowerCase() && rows.Name === 'Alice Liddell' &&
          rows.Age === '30' && rows.Gender === 'Female' && since.includes(String(new Date().getFullYear())),
          'it shows the profile from the server', JSON.stringify(rows));
    const current = await a.getAttribute('.site-nav a[aria-current="page"]', 'href');
    check(current === '#/account', 'the navigation marks Account as the current page', `current: ${current}`);
    await shots(a, 'account');

    await a.goBack();
    const back = await waitForText(a, '#app h1', `Welcome, ${alice.nickname}`);
    check(back === `Welcome, ${alice.nickname}` && await hashOf(a) === '#/', 'Back returns to the forum view', `heading: ${back}`);
    await a.goForward();
    const forward = await waitForText(a, '#app h1', 'Your account');
    check(forward === 'Your account', 'Forward returns to the account view', `heading: ${forward}`);

    await logOut(a);
    await checkLogin(a, 'logged out from the account view');
    check(await a.evaluate(() => window.forumdNoReload === true), 'without a reload');
    await a.goBack();
    const afterBack = await waitForText(a, '#app h1', 'Log in');
    check(afterBack === 'Log in' && !(await navShown(a)), 'Back after logging out shows no signed-in view', `heading: ${afterBack}`);

    await wrongPasswords(a, wa);

    await b.waitForLoadState('networkidle').catch(() => {});
    const problems = [...wa.problems(), ...wr.problems(), ...wb.problems(), ...wb2.problems()];
    check(problems.length === 0, 'no console errors, page errors or failed requests but the expected ones', list(problems));
}

process.exit(await runTests('accounts.mjs', run, { timeoutMs: 90_000 }));
