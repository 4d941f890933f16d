/*
 * Browser test of the forum: the feed and its keyset "Load more", the category filter in the hash,
 * writing a post through the form (errors next to their field first), and the live updates between
 * two users in two browser contexts: a new post shows up in the feeds it belongs to (and not in
 * the one it does not), a comment shows up under the open post and its count goes up in the feed,
 * all without a reload. TAP on stdout.
 *
 *   node t/browser/feed.mjs https://127.0.0.1:PORT
 *
 * The server must be fresh (no posts yet) and hash passwords cheaply (t/62-browser-feed.t).
 * FORUMD_SCREENSHOT_DIR=DIR also saves screenshots of the views at desktop and phone width.
 */
import { check, focused, list, newPage, overflow, pageApi, runTests, textOf, visible, waitForText, watch } from './lib.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const LIVE_TIMEOUT_MS = 10_000;
const QUIET_MS = 700; // how long a frame that must not change a page gets to do so anyway
const OLD_POSTS = 25;
const MARKUP = '<b>Older</b> post 1 <img src=x>';
const PAGE = 20;

const tag = `${process.pid}${Date.now() % 100_000}`;
const user = (nickname, first_name) => ({
    nickname, first_name, last_name: 'Tester', email: `${nickname}@example.org`, password: 'long enough secret',
    age: 33, gender: 'other',
});
const alice = user(`alice${tag}`, 'Alice');
const bob = user(`bob${tag}`, 'Bob');

const hashOf = (page) => page.evaluate(() => location.hash);
const cardIds = (page) => page.$$eval('.post-list > .post-card', (cards) => cards.map((c) => Number(c.dataset.id)));
const card = (page, id) => page.locator(`.post-card[data-id="${id}"]`);
const markNoReload = (page) => page.evaluate(() => { window.forumdNoReload = true; });
const notReloaded = (page) => page.evaluate(() => window.forumdNoReload === true);

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

/** Waits until fn() is true (polling); returns whether it became so. */
async function until(page, fn, timeout = LIVE_TIMEOUT_MS) {
    const deadline = Date.now() + timeout;
    for (;;) {
        if (await fn())
            return true;
        if (Date.now() > deadline)
            return false;
        await page.waitForTimeout(50);
    }
}

/** A signed-in page for a user registered through the API, on the feed, with the socket online. */
async function signedIn(browser, base, who, label) {
    const page = await newPage(browser, DESKTOP);
    const watcher = watch(page, label);
    watcher.expectHttpError('/api/auth/me', 401); // the page starts signed out
    await page.goto(`${base}/`);
    await visible(page, '#login-form');
    const res = await pageApi(page, 'POST', '/api/auth/register', who);
    check(res.status === 201, `${label}: ${who.nickname} registers through the API`, JSON.stringify(res));
    await page.reload();
    await openFeed(page, who, label);
    return { page, watcher };
}

async function openFeed(page, who, what) {
    const heading = await waitForText(page, '#app h1', `Welcome, ${who.nickname}`);
    const online = await waitForText(page, 'footer .connection', 'online', LIVE_TIMEOUT_MS);
    check(heading === `Welcome, ${who.nickname}` && online === 'online', `${what}: the feed is open and the socket online`,
          `heading: ${heading}; connection: ${online}`);
}

/** The posts of a feed once they are loaded (the first card, or the empty message, is shown). */
async function feedLoaded(page) {
    await page.locator('.post-list > .post-card, .feed-status .empty').first().waitFor({ timeout: LIVE_TIMEOUT_MS }).catch(() => {});
    return cardIds(page);
}

async function loadMore(page, olderIds) {
    const first = await feedLoaded(page);
    check(first.length === PAGE && JSON.stringify(first) === JSON.stringify(olderIds.slice(0, PAGE)),
          `the feed shows the ${PAGE} newest posts, newest first`, `ids: ${first.join(' ')}`);
    const moreShown = await page.locator('.load-more').isVisible();
    check(moreShown, '"Load more" is offered under them');
    await shots(page, 'feed');
    await page.locator('.load-more').focus();
    await page.keyboard.press('Enter');
    await until(page, async () => (await cardIds(page)).length >= OLD_POSTS);
    await page.waitForTimeout(200);
    const all = await cardIds(page);
    check(JSON.stringify(all) === JSON.stringify(olderIds),
          `"Load more" (by keyboard) adds the ${OLD_POSTS - PAGE} older ones after them, no repeats`,
          `ids: ${all.join(' ')}`);
    const hidden = await page.locator('.load-more').isHidden();
    check(hidden, '"Load more" goes away when there is nothing older');
    const focus = await focused(page);
    check(focus === 'a.post-card-link', 'the focus moves to the first post that came in', `focus: ${focus}`);
    const oldest = await card(page, olderIds.at(-1)).evaluate((el) => ({
        title: el.querySelector('.post-card-title').textContent,
        elements: el.querySelectorAll('.post-card-title b, .post-card-title img').length,
    }));
    check(oldest.title === MARKUP && oldest.elements === 0, 'a title with markup in it shows as text', JSON.stringify(oldest));
}

/** A's form: no category, then four (the server's 422), each time the error next to its field. */
async function formErrors(page, watcher, post) {
    await page.getByRole('button', { name: 'New post' }).click();
    const open = await visible(page, '#post-form');
    const expanded = await page.getAttribute('.new-post-toggle', 'aria-expanded');
    check(open && expanded === 'true', '"New post" opens the form', `aria-expanded: ${expanded}`);
    const focus = await focused(page);
    check(focus === 'input#new-post-title', 'with the focus in the title', `focus: ${focus}`);
    const fieldDirs = await page.evaluate(() => ['#new-post-title', '#new-post-body'].map((s) => document.querySelector(s)?.dir));
    check(fieldDirs.every((d) => d === 'auto'), 'its title and text fields take the direction of what is typed (dir=auto)', fieldDirs.join(', '));
    const legends = await page.locator('#post-form legend, #post-form label[for^="new-post-"]:not(.checkbox)').allTextContents();
    check(legends.join('|') === 'Title|Text|Categories', 'it asks for a title, a text and categories', legends.join('|'));
    const boxes = await page.locator('#post-form input[type="checkbox"]').count();
    check(boxes === 6, 'the categories are six checkboxes', `checkboxes: ${boxes}`);

    await page.fill('#new-post-title', post.title);
    await page.fill('#new-post-body', post.body);
    await page.click('#post-form button[type="submit"]');
    const none = await textOf(page, '#new-post-categories-error:not([hidden])');
    check(none === 'Choose at least one category.', 'no category: the error shows next to the categories', `error: ${none}`);
    const noneFocus = await focused(page);
    check(noneFocus === 'input#new-post-categories-general', 'and the focus goes to the first checkbox', `focus: ${noneFocus}`);

    for (const slug of ['general', 'news', 'discussion', 'technology'])
        await page.check(`#new-post-categories-${slug}`);
    const cleared = await page.locator('#new-post-categories-error').isHidden();
    check(cleared, 'choosing a category clears the error');
    watcher.expectHttpError('/api/posts', 422);
    await page.click('#post-form button[type="submit"]');
    await page.locator('#new-post-categories-error:not([hidden])').waitFor({ timeout: 5_000 }).catch(() => {});
    const state = await page.evaluate(() => {
        const error = document.getElementById('new-post-categories-error');
        const group = document.getElementById('new-post-categories');
        return {
            error: error.hidden ? null : error.textContent,
            inGroup: group.contains(error),
            describedBy: group.getAttribute('aria-describedby'),
            title: document.getElementById('new-post-title').value,
            body: document.getElementById('new-post-body').value,
            checked: [...document.querySelectorAll('#post-form input[type="checkbox"]:checked')].map((box) => box.value),
            invalid: [...document.querySelectorAll('#post-form [aria-invalid="true"]')].map((el) => el.id),
        };
    });
    check(state.error === 'Choose one to three categories.' && state.inGroup,
          "four categories: the server's 422 shows inside the categories group", JSON.stringify(state));
    check(/new-post-categories-error/.test(state.describedBy ?? ''), 'which is described by it', `aria-describedby: ${state.describedBy}`);
    check(state.title === post.title && state.body === post.body && state.checked.join() === 'general,news,discussion,technology',
          'everything typed and chosen is kept', JSON.stringify(state));
    check(state.invalid.every((id) => id.startsWith('new-post-categories-')), 'only the checkboxes are marked invalid', state.invalid.join());
    await shots(page, 'create-error');

    await page.getByRole('link', { name: 'Account' }).click();
    await waitForText(page, '#app h1', 'Your account');
    await page.goBack();
    await visible(page, '#post-form');
    const kept = await page.evaluate(() => ({
        title: document.getElementById('new-post-title').value,
        body: document.getElementById('new-post-body').value,
        checked: [...document.querySelectorAll('#post-form input[type="checkbox"]:checked')].map((box) => box.value),
    }));
    check(kept.title === post.title && kept.body === post.body && kept.checked.join() === 'general,news,discussion,technology',
          'after a look at another view, the form is open again with the draft in it', JSON.stringify(kept));
}

/**
 * A tab whose socket goes through the test, which forwards every frame but those of the types in
 * drop: those are lost, as they are while a connection is down. reconnect() drops the connection
 * and resolves when the tab is online again.
 */
async function lossyTab(context) {
    const page = await context.newPage();
    const watcher = watch(page, 'bob, lossy tab');
    const drop = new Set();
    const sockets = [];
    await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        const server = ws.connectToServer();
        server.onMessage((message) => {
            let type = null;
            try {
                type = JSON.parse(message).type;
            } catch {
                // not JSON: pass it on
            }
            if (!drop.has(type))
                ws.send(message);
        });
        ws.onMessage((message) => server.send(message));
        sockets.push({ ws, server });
    });
    async function reconnect() {
        const last = sockets.at(-1);
        const count = sockets.length;
        await last.ws.close({ code: 1001, reason: 'going away' });
        await last.server.close({ code: 1000, reason: 'test' }).catch(() => {});
        await until(page, async () => sockets.length > count);
        await waitForText(page, 'footer .connection', 'online', LIVE_TIMEOUT_MS);
    }
    return { page, watcher, drop, reconnect };
}

async function run(base, browser) {
    const { page: a, watcher: wa } = await signedIn(browser, base, alice, 'alice');

    // older posts, through the API: none of them in news or sports
    const spread = ['general', 'technology', 'discussion'];
    const olderIds = [];
    for (let i = 1; i <= OLD_POSTS; i++) {
        const title = i === 1 ? MARKUP : `Older post ${i}`;
        const res = await pageApi(a, 'POST', '/api/posts', { title, body: `Body of older post ${i}`, categories: [spread[i % 3]] });
        if (res.status !== 201)
            throw new Error(`creating post ${i}: ${JSON.stringify(res)}`);
        olderIds.unshift(res.json.post.id);
    }
    await a.reload();
    await openFeed(a, alice, 'alice after creating posts');
    await loadMore(a, olderIds);
    await a.evaluate(() => window.scrollTo(0, 0));
    const sample = card(a, olderIds[0]);
    const sampleText = await sample.innerText();
    const dt = await sample.locator('time').getAttribute('datetime');
    check(/Older post 25/.test(sampleText) && sampleText.includes(alice.nickname) && /General|Technology|Discussion/.test(sampleText) &&
          /No comments yet/.test(sampleText) && /^\d{4}-\d\d-\d\dT/.test(dt ?? ''),
          'a post shows its title, author, categories, comment count and a <time datetime>', `${sampleText}\ndatetime: ${dt}`);
    const filters = await a.locator('nav.filters a').allTextContents();
    check(filters.join('|') === 'All|General|News|Discussion|Technology|Sports|Entertainment', 'the filter offers All and the six categories',
          filters.join('|'));

    // bob: one tab on the whole feed, one filtered to news by the filter, one to sports by its URL
    const { page: b, watcher: wb } = await signedIn(browser, base, bob, 'bob');
    const bNews = await b.context().newPage();
    const wbNews = watch(bNews, 'bob, news');
    await bNews.goto(`${base}/#/`);
    await openFeed(bNews, bob, 'bob, second tab');
    await feedLoaded(bNews);
    await bNews.getByRole('link', { name: 'News', exact: true }).click();
    await bNews.locator('.feed-status .empty').waitFor({ timeout: LIVE_TIMEOUT_MS }).catch(() => {});
    const newsHash = await hashOf(bNews);
    const newsEmpty = await textOf(bNews, '.feed-status .empty');
    check(newsHash === '#/?category=news' && newsEmpty === 'No posts in News yet. Be the first to write one.',
          'the News filter puts #/?category=news in the URL and shows no posts yet', `hash: ${newsHash}; text: ${newsEmpty}`);
    const newsFocus = await focused(bNews);
    const current = await textOf(bNews, 'nav.filters a[aria-current="page"]');
    check(current === 'News' && newsFocus === 'a.filter', 'News is marked current and keeps the focus',
          `current: ${current}; focus: ${newsFocus}`);
    await bNews.reload();
    await openFeed(bNews, bob, 'bob, news tab reloaded');
    await bNews.locator('.feed-status .empty').waitFor({ timeout: LIVE_TIMEOUT_MS }).catch(() => {});
    const afterReload = await textOf(bNews, 'nav.filters a[aria-current="page"]');
    check(await hashOf(bNews) === '#/?category=news' && afterReload === 'News' && (await cardIds(bNews)).length === 0,
          'a reload keeps the filter', `current: ${afterReload}`);
    await bNews.goBack();
    const all = await waitForText(bNews, 'nav.filters a[aria-current="page"]', 'All');
    const backIds = await feedLoaded(bNews);
    check(await hashOf(bNews) === '#/' && all === 'All' && backIds.length === PAGE, 'Back returns to all posts, with All marked current',
          `hash: ${await hashOf(bNews)}; current: ${all}; posts: ${backIds.length}`);
    await bNews.goForward();
    const news = await waitForText(bNews, 'nav.filters a[aria-current="page"]', 'News');
    await bNews.locator('.feed-status .empty').waitFor({ timeout: LIVE_TIMEOUT_MS }).catch(() => {});
    check(await hashOf(bNews) === '#/?category=news' && news === 'News', 'Forward returns to News', `current: ${news}`);

    const bSports = await b.context().newPage();
    const wbSports = watch(bSports, 'bob, sports');
    await bSports.goto(`${base}/#/?category=sports`);
    await openFeed(bSports, bob, 'bob, sports tab');
    await feedLoaded(bSports);
    const sportsTitle = await textOf(bSports, '#feed-title');
    check(sportsTitle === 'Latest in Sports', 'a tab opened at #/?category=sports shows Sports', `title: ${sportsTitle}`);
    await feedLoaded(b);
    for (const page of [b, bNews, bSports])
        await markNoReload(page);

    // alice writes a post in news through the form
    const post = { title: `Fresh news ${tag}`, body: 'First line\nSecond line\n\n    indented fourth line' };
    await formErrors(a, wa, post);
    for (const slug of ['general', 'discussion', 'technology'])
        await a.uncheck(`#new-post-categories-${slug}`);
    await a.click('#post-form button[type="submit"]');
    const top = await waitForText(a, '.post-list > .post-card .post-card-title', post.title);
    check(top === post.title, "on success alice's post is at the top of her feed", `top: ${top}`);
    // the live post.created frame may show the post before the answer to the form's request arrives
    await a.waitForFunction(() => document.getElementById('post-form').hidden, null, { timeout: LIVE_TIMEOUT_MS }).catch(() => {});
    const formState = await a.evaluate(() => ({
        hidden: document.getElementById('post-form').hidden,
        title: document.getElementById('new-post-title').value,
        body: document.getElementById('new-post-body').value,
        checked: document.querySelectorAll('#post-form input:checked').length,
    }));
    check(formState.hidden && !formState.title && !formState.body && !formState.checked, 'the form is cleared and closed',
          JSON.stringify(formState));
    const postId = (await cardIds(a))[0];

    const inAll = await card(b, postId).waitFor({ timeout: LIVE_TIMEOUT_MS }).then(() => true, () => false);
    const bTop = (await cardIds(b))[0];
    check(inAll && bTop === postId, 'bob sees it appear at the top of his feed', `top: ${bTop}; wanted ${postId}`);
    const inNews = await card(bNews, postId).waitFor({ timeout: LIVE_TIMEOUT_MS }).then(() => true, () => false);
    const newsIds = await cardIds(bNews);
    check(inNews && newsIds.join() === String(postId), 'and in his feed filtered to News', `ids: ${newsIds.join(' ')}`);
    check(await bNews.locator('.feed-status .empty').count() === 0, 'where "no posts yet" is gone');
    await shots(bNews, 'feed-news');
    await a.waitForTimeout(QUIET_MS);
    const sportsIds = await cardIds(bSports);
    check(!sportsIds.includes(postId), 'but not in his feed filtered to Sports', `ids: ${sportsIds.join(' ')}`);
    const aIds = await cardIds(a);
    const bIds = await cardIds(b);
    // alice had loaded all the older posts, and Back from her account view kept them (issue 14, 7a)
    check(aIds.filter((id) => id === postId).length === 1 && aIds.length === OLD_POSTS + 1,
          "alice's feed has it once, though it came both in the answer and live", `ids: ${aIds.join(' ')}`);
    check(bIds.filter((id) => id === postId).length === 1 && bIds.length === PAGE + 1, "bob's has it once too", `ids: ${bIds.join(' ')}`);
    const reloads = await Promise.all([b, bNews, bSports].map(notReloaded));
    check(reloads.every(Boolean), 'none of bob\'s tabs reloaded', reloads.join());

    // alice opens her post by keyboard; bob opens it by clicking and comments
    await card(a, postId).locator('a.post-card-link').focus();
    await a.keyboard.press('Enter');
    const heading = await waitForText(a, '#app h1', post.title);
    check(heading === post.title && await hashOf(a) === `#/post/${postId}`, 'Enter on a post opens it at #/post/ID', `heading: ${heading}`);
    await visible(a, '.post-body');
    const body = await a.evaluate(() => {
        const el = document.querySelector('.post-body');
        return { text: el.textContent, whiteSpace: getComputedStyle(el).whiteSpace, height: el.getBoundingClientRect().height };
    });
    check(body.text === post.body && body.whiteSpace === 'pre-wrap', 'its whole text with its line breaks', JSON.stringify(body));
    const noComments = await textOf(a, '.comments > .muted:not([hidden])');
    check(noComments === 'No comments yet. Be the first to write one.', 'it says there are no comments yet', `text: ${noComments}`);
    const docTitle = await a.title();
    check(docTitle === `${post.title} · forumd`, 'the window title is the post title', `title: ${docTitle}`);
    await markNoReload(a);

    await card(b, postId).click();
    await waitForText(b, '#app h1', post.title);
    await visible(b, '#comment-form');
    const comment = `Welcome news, ${tag}!\nOn two lines.`;
    await b.fill('#comment-body', comment);
    await b.click('#comment-form button[type="submit"]');
    const mine = await waitForText(b, '.comment-list > .comment .comment-body', comment);
    // the comment may show first from the live frame, which can come before the answer to the POST that empties the field
    await until(b, async () => (await b.inputValue('#comment-body')) === '');
    const bField = await b.inputValue('#comment-body');
    check(mine === comment && bField === '', "bob's comment shows under the post, and his field is empty again", `comment: ${mine}; field: ${bField}`);

    const arrived = await waitForText(a, '.comment-list > .comment .comment-body', comment, LIVE_TIMEOUT_MS);
    check(arrived === comment, 'alice, with the post open, sees the comment appear under it', `comment: ${arrived}`);
    const author = await textOf(a, '.comment-list > .comment .author');
    check(author === bob.nickname, 'with its author', `author: ${author}`);
    check(await notReloaded(a), 'without a reload');
    const count = await waitForText(a, '.post-details .comment-count', '1 comment');
    check(count === '1 comment', "the post's comment count says 1 comment", `count: ${count}`);
    const newsCount = await waitForText(bNews, `.post-card[data-id="${postId}"] .comment-count`, '1 comment', LIVE_TIMEOUT_MS);
    check(newsCount === '1 comment', "the comment count in bob's News feed updates live", `count: ${newsCount}`);

    // and back: alice answers, bob sees it live; each list has each comment once
    await a.fill('#comment-body', 'Thanks!');
    await a.click('#comment-form button[type="submit"]');
    const reply = await until(b, async () => (await b.locator('.comment-list > .comment').count()) === 2);
    await b.waitForTimeout(QUIET_MS);
    const bComments = await b.locator('.comment-list > .comment .comment-body').allTextContents();
    const aComments = await a.locator('.comment-list > .comment .comment-body').allTextContents();
    check(reply && bComments.join('|') === `${comment}|Thanks!` && aComments.join('|') === bComments.join('|'),
          "bob sees alice's answer live; both lists have both comments once, oldest first",
          `alice: ${aComments.join(' | ')}\nbob: ${bComments.join(' | ')}`);
    const twice = await waitForText(bNews, `.post-card[data-id="${postId}"] .comment-count`, '2 comments', LIVE_TIMEOUT_MS);
    check(twice === '2 comments', 'and the feed counts 2 comments', `count: ${twice}`);
    // right-to-left text (Arabic, Hebrew) takes its own direction: dir=auto on every piece of user text and every field
    const postDirs = await b.evaluate(() => ['#post-title', '.post-body', '.post-meta .author', '.comment-body', '.comment-meta .author',
                                             '#comment-body'].map((s) => `${s}: ${document.querySelector(s)?.dir}`));
    const cardDirs = await bNews.evaluate(() => ['.post-card-link', '.post-excerpt', '.post-card .author', '.nickname']
        .map((s) => `${s}: ${document.querySelector(s)?.dir}`));
    check([...postDirs, ...cardDirs].every((d) => d.endsWith(': auto')),
          "a post's title, text, authors and comments, the comment field, and the feed's cards and nickname have dir=auto",
          [...postDirs, ...cardDirs].join('; '));
    await shots(a, 'post');

    // frames lost while a connection was down: the tab catches up when it is back
    const lossy = await lossyTab(b.context());
    await lossy.page.goto(`${base}/#/`);
    await openFeed(lossy.page, bob, 'bob, a tab whose frames the test can hold back');
    await feedLoaded(lossy.page);
    lossy.drop.add('post.created');
    const away = await pageApi(a, 'POST', '/api/posts', { title: `Missed while away ${tag}`, body: 'Sent while the tab was deaf.',
                                                          categories: ['general'] });
    await lossy.page.waitForTimeout(QUIET_MS);
    const awayId = away.json?.post?.id;
    check(away.status === 201 && !(await lossy.page.locator(`.post-card[data-id="${awayId}"]`).count()),
          'a post whose frame is lost does not show (the test really drops it)', JSON.stringify(away));
    lossy.drop.delete('post.created');
    await lossy.reconnect();
    const caught = await lossy.page.locator(`.post-card[data-id="${awayId}"]`).waitFor({ timeout: LIVE_TIMEOUT_MS })
        .then(() => true, () => false);
    const lossyIds = await cardIds(lossy.page);
    check(caught && lossyIds[0] === awayId && lossyIds.filter((id) => id === awayId).length === 1,
          'after the socket reconnects, the feed catches up: the post is at the top, once', `ids: ${lossyIds.join(' ')}`);

    await lossy.page.goto(`${base}/#/post/${postId}`);
    await until(lossy.page, async () => (await lossy.page.locator('.comment-list > .comment').count()) === 2);
    await waitForText(lossy.page, 'footer .connection', 'online', LIVE_TIMEOUT_MS);
    lossy.drop.add('comment.created');
    const missed = await pageApi(a, 'POST', `/api/posts/${postId}/comments`, { body: 'Said while you were away.' });
    await lossy.page.waitForTimeout(QUIET_MS);
    const before = await lossy.page.locator('.comment-list > .comment').count();
    check(missed.status === 201 && before === 2, 'a comment whose frame is lost does not show', `comments: ${before}`);
    lossy.drop.delete('comment.created');
    await lossy.reconnect();
    const three = await until(lossy.page, async () => (await lossy.page.locator('.comment-list > .comment').count()) === 3);
    const lastComment = await lossy.page.locator('.comment-list > .comment .comment-body').last().textContent();
    const lossyCount = await waitForText(lossy.page, '.post-details .comment-count', '3 comments');
    check(three && lastComment === 'Said while you were away.' && lossyCount === '3 comments',
          'after the socket reconnects, the post view catches up: the comment at the end, the count 3',
          `last: ${lastComment}; count: ${lossyCount}`);
    await lossy.page.close();

    // a post that does not exist
    wa.expectHttpError('/api/posts/999999', 404);
    wa.expectHttpError('/api/posts/999999/comments', 404);
    await a.goto(`${base}/#/post/999999`);
    const missing = await waitForText(a, '#app h1', 'Post not found');
    const link = await a.locator('#app a[href="#/"]').count();
    check(missing === 'Post not found' && link > 0, 'a post that does not exist: "Post not found" and a way back', `heading: ${missing}`);
    await shots(a, 'not-found');

    for (const page of [a, b, bNews, bSports])
        await page.waitForLoadState('networkidle').catch(() => {});
    const problems = [wa, wb, wbNews, wbSports, lossy.watcher].flatMap((w) => w.problems());
    check(problems.length === 0, 'no console errors, page errors or failed requests but the expected ones', list(problems));
}

process.exit(await runTests('feed.mjs', run, { timeoutMs: 120_000 }));
