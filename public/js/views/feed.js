/*
 * The feed, the signed-in home (#/ or #/?category=SLUG): posts newest first, twenty at a time with
 * "Load more" (keyset: before the oldest one shown), a category filter kept in the hash, the form
 * that writes a new post, and the members who joined while the page has been open.
 *
 * Back keeps what the reader had: leaving the feed remembers its posts, its "Load more" cursor and
 * the scroll position in forum.feedMemory under an id stamped on the history entry, and a feed
 * drawn for that same entry again (Back, Forward) shows them as they were, then asks for the first
 * page to merge in what is new. A feed reached by a link starts afresh.
 *
 * Live: a post.created that fits the filter goes in at its place (the top), a comment.created
 * updates the comment count of its post. Every list is keyed by id, so a post that arrives both in
 * an answer and in a frame is shown once.
 */
import { h, replace } from '../dom.js';
import { api, errorOf, sentence } from '../api.js';
import { field, fieldText, formMessage, onSubmit, showErrors } from '../form.js';
import { IdList, categoryNames, fetchMore, postCard } from '../posts.js';

const PAGE = 20;
const PRESENCE = { true: 'online', false: 'offline' };

// set by a click on a filter, so that the feed drawn for it puts the focus back on the filter
let focusFilter = false;

const feedHash = (slug) => (slug ? `#/?category=${encodeURIComponent(slug)}` : '#/');

function memberItem(member) {
    const time = member.joinedAt.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
    return h('li', { class: 'member' },
        h('span', { class: 'member-name', dir: 'auto' }, member.nickname),
        member.online !== null && h('span', { class: 'presence', 'data-online': String(member.online) }, PRESENCE[member.online]),
        h('span', { class: 'member-meta' }, 'joined ', h('time', { datetime: member.joinedAt.toISOString() }, time)));
}

/** The members who joined while this page has been open, live. Returns {node, destroy}. */
function membersPanel(members) {
    const list = h('ul', { class: 'member-list', 'aria-labelledby': 'new-members-title' });
    const empty = h('p', { class: 'muted' }, 'No one has joined since you opened this page.');
    const destroy = members.subscribe((all) => {
        replace(list, all.map(memberItem));
        list.hidden = all.length === 0;
        empty.hidden = all.length !== 0;
    });
    const node = h('section', { class: 'panel members', 'aria-labelledby': 'members-title' },
        h('h2', { id: 'members-title' }, 'Members'),
        h('h3', { id: 'new-members-title' }, 'New members'),
        h('div', { 'aria-live': 'polite' }, list, empty));
    return { node, destroy };
}

/** The category filter: "All" and one link per category, the current one marked. */
function filterNav(categories, current) {
    const link = (slug, label) => h('a', {
        class: 'filter',
        href: feedHash(slug),
        'aria-current': slug === current ? 'page' : false,
        onclick: () => { focusFilter = slug !== current; },
    }, label);
    return h('nav', { class: 'filters', 'aria-label': 'Categories' },
        h('ul', null,
            h('li', null, link('', 'All')),
            categories.map((c) => h('li', null, link(c.slug, c.name)))));
}

/**
 * The 1-to-3 category checkboxes as one form field, with the same face as form.js's field():
 * {node, control (the first box, for the focus), label, setError, clearError, values()}.
 */
function categoryField(categories) {
    const id = 'new-post-categories';
    const boxes = categories.map((c) => h('input', { type: 'checkbox', name: 'categories', value: c.slug, id: `${id}-${c.slug}` }));
    const hint = h('p', { class: 'hint', id: `${id}-hint` }, 'Choose one to three.');
    const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
    const node = h('fieldset', { class: 'field category-field', id, 'aria-describedby': hint.id },
        h('legend', null, 'Categories'),
        hint,
        h('div', { class: 'checkboxes' },
            categories.map((c, i) => h('label', { class: 'checkbox', for: boxes[i].id }, boxes[i], c.name))),
        error);
    const self = {
        node,
        control: boxes[0],
        label: 'Categories',
        setError(text) {
            error.textContent = text;
            error.hidden = false;
            node.setAttribute('aria-describedby', `${hint.id} ${error.id}`);
            node.classList.add('invalid');
            boxes.forEach((box) => box.setAttribute('aria-invalid', 'true'));
        },
        clearError() {
            error.textContent = '';
            error.hidden = true;
            node.setAttribute('aria-describedby', hint.id);
            node.classList.remove('invalid');
            boxes.forEach((box) => box.removeAttribute('aria-invalid'));
        },
        values: () => boxes.filter((box) => box.checked).map((box) => box.value),
        set(slugs) {
            boxes.forEach((box) => { box.checked = slugs.includes(box.value); });
        },
    };
    node.addEventListener('change', () => self.clearError());
    return self;
}

/**
 * The "New post" button and the form it opens. What is typed lives in the store's draft, so it
 * survives a change of filter or a look at a post. onCreated(post) gets the post the server made.
 */
function composer(ctx, categories, onCreated) {
    const { forum } = ctx;
    const draft = forum.draft;
    const fields = {
        title: field('new-post-title', 'Title',
            h('input', { type: 'text', name: 'title', maxlength: 200, required: true, autocomplete: 'off', dir: 'auto' })),
        body: field('new-post-body', 'Text',
            h('textarea', { name: 'body', rows: 7, maxlength: 20000, required: true, dir: 'auto' })),
        categories: categoryField(categories),
    };
    fields.title.control.value = draft.title;
    fields.body.control.value = draft.body;
    fields.categories.set(draft.categories);

    const message = formMessage();
    const submit = h('button', { type: 'submit', class: 'button' }, 'Publish');
    const form = h('form', { id: 'post-form', class: 'form post-form', novalidate: true, 'aria-label': 'New post', hidden: !draft.open },
        message.node,
        fields.title.node, fields.body.node, fields.categories.node,
        h('div', { class: 'actions' }, submit));
    const toggle = h('button', {
        type: 'button', class: 'button new-post-toggle', 'aria-expanded': String(draft.open), 'aria-controls': form.id,
        onclick: () => open(form.hidden),
    }, 'New post');

    function open(yes) {
        draft.open = yes;
        form.hidden = !yes;
        toggle.setAttribute('aria-expanded', String(yes));
        if (yes)
            fields.title.control.focus();
    }

    form.addEventListener('input', () => {
        draft.title = fields.title.control.value;
        draft.body = fields.body.control.value;
        draft.categories = fields.categories.values();
    });
    form.addEventListener('keydown', (event) => {
        if (event.key === 'Escape') {
            open(false);
            toggle.focus();
        }
    });

    onSubmit(form, submit, 'Publishing…', async () => {
        message.clear();
        const values = {
            title: fields.title.control.value.trim(),
            body: fields.body.control.value.trim(),
            categories: fields.categories.values(),
        };
        const errors = {};
        if (!values.title)
            errors.title = 'Title is required.';
        if (!values.body)
            errors.body = 'Text is required.';
        if (!values.categories.length)
            errors.categories = 'Choose at least one category.';
        if (showErrors(fields, errors))
            return;

        const res = await api('POST', '/api/posts', values);
        if (res.status === 201 && res.json?.post) {
            Object.assign(draft, { title: '', body: '', categories: [], open: false });
            form.reset();
            showErrors(fields, {});
            open(false);
            onCreated(res.json.post);
            return;
        }
        if (res.status === 401) {
            ctx.onAuthLost();
            return;
        }
        const err = errorOf(res);
        const f = Object.hasOwn(fields, err.field ?? '') ? fields[err.field] : null;
        if (f) {
            const text = res.json.error.message;
            showErrors(fields, { [err.field]: err.field === 'categories' ? sentence(text) : fieldText(f.label, text, res.status) });
        } else {
            message.show(err.message);
        }
    });

    return { toggle, form };
}

export function feedView(ctx) {
    const { forum } = ctx;
    const wanted = ctx.query.get('category') ?? '';
    let gone = false;
    let names = new Map();
    let nextBefore = null;
    let loaded = false;       // the first page is on screen
    let sent = false;         // the first page was asked for: a hello after this may mean missed frames
    let refreshAgain = false; // a hello came while the first page was on its way
    let loadingFirst = false;
    let loadingMore = false;
    const early = [];         // live posts that came before the first page
    const refocus = focusFilter;
    focusFilter = false;
    forum.feedHash = feedHash(wanted);
    const memory = forum.feedMemory;
    const remembered = memory && memory.wanted === wanted && history.state?.feedMemory === memory.id ? memory : null;
    const memoryId = remembered?.id ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    history.replaceState({ ...history.state, feedMemory: memoryId }, '');

    const heading = h('h1', { id: 'home-title', tabindex: -1 }, 'Welcome, ', h('span', { class: 'nickname', dir: 'auto' }, ctx.user.nickname));
    const filters = h('div', { class: 'filters-slot' });
    const listTitle = h('h2', { id: 'feed-title' }, 'Latest posts');
    const toolbar = h('div', { class: 'feed-head' }, listTitle);
    const formSlot = h('div', { class: 'post-form-slot' });
    const notice = h('p', { class: 'feed-notice', role: 'status', hidden: true });
    const status = h('div', { class: 'feed-status' }, h('p', { class: 'muted' }, 'Loading posts…'));
    const listEl = h('ol', { class: 'post-list', 'aria-labelledby': 'feed-title' });
    const list = new IdList(listEl, { descending: true });
    const moreError = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const more = h('button', { type: 'button', class: 'button button-quiet load-more', hidden: true, onclick: () => loadMore() },
        'Load more');
    const announcer = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
    const members = membersPanel(ctx.members);
    // below the posts, it would be pushed down the page by them as they load: it comes once they are there
    members.node.hidden = true;

    const node = h('section', { class: 'feed', 'aria-labelledby': 'home-title' },
        heading,
        filters,
        h('section', { class: 'feed-posts', 'aria-labelledby': 'feed-title' },
            toolbar, formSlot, notice, status, listEl, moreError, h('div', { class: 'load-more-row' }, more), announcer),
        members.node);

    const matches = (post) => !wanted || (post.categories ?? []).includes(wanted);
    const query = (before) => {
        const params = new URLSearchParams({ limit: String(PAGE) });
        if (wanted)
            params.set('category', wanted);
        if (before)
            params.set('before', String(before));
        return `/api/posts?${params}`;
    };

    function showStatus(...children) {
        replace(status, children);
        status.hidden = children.length === 0;
    }

    function showEmpty() {
        if (list.size === 0 && loaded) {
            const where = wanted ? ` in ${names.get(wanted) ?? wanted}` : '';
            showStatus(h('p', { class: 'muted empty' }, `No posts${where} yet. Be the first to write one.`));
        } else if (loaded) {
            showStatus();
        }
    }

    function addPost(post) {
        const card = postCard(post, names);
        if (!list.add(post.id, card))
            return null;
        showEmpty();
        return card;
    }

    function setNextBefore(value) {
        nextBefore = value ?? null;
        more.hidden = nextBefore === null;
    }

    function failed(res, retry) {
        if (res.status === 401) {
            ctx.onAuthLost();
            return;
        }
        showStatus(h('p', { class: 'form-error', role: 'alert' }, `The posts could not be loaded. ${errorOf(res).message}`),
            h('button', { type: 'button', class: 'button button-quiet', onclick: retry }, 'Try again'));
    }

    /** The first page; after a hello, again, merged with what is shown (or replacing it after a gap). */
    async function loadFirst() {
        if (loadingFirst)
            return;
        loadingFirst = true;
        sent = true;
        refreshAgain = false;
        const res = await api('GET', query(null));
        loadingFirst = false;
        if (gone)
            return;
        if (res.status !== 200 || !Array.isArray(res.json?.posts)) {
            if (!loaded)
                failed(res, () => { showStatus(h('p', { class: 'muted' }, 'Loading posts…')); loadFirst(); });
            return;
        }
        const posts = res.json.posts;
        const newestShown = list.ids()[0];
        // a full page that does not reach what is shown leaves a gap: start again from this page
        if (loaded && res.json.next_before !== null && newestShown !== undefined && posts.length &&
            posts[posts.length - 1].id > newestShown)
            list.clear();
        if (!loaded || list.size === 0)
            setNextBefore(res.json.next_before);
        loaded = true;
        members.node.hidden = false;
        for (const post of [...posts, ...early.splice(0)]) {
            const known = list.get(post.id);
            if (known)
                known.setCount(post.comment_count);
            else if (matches(post))
                addPost(post);
        }
        showEmpty();
        if (refreshAgain)
            loadFirst();
    }

    async function loadMore() {
        if (loadingMore || nextBefore === null)
            return;
        loadingMore = true;
        const page = await fetchMore({ button: more, errorNode: moreError, label: 'Load more', noun: 'posts',
            url: query(nextBefore), key: 'posts', ctx, isGone: () => gone });
        loadingMore = false;
        if (!page)
            return;
        const added = page.posts.map(addPost).filter(Boolean);
        const hadFocus = document.activeElement === more;
        setNextBefore(page.next_before);
        // the keyboard goes on from the first post that came in, not from the top of the page
        if (hadFocus && added.length)
            added[0].link.focus();
    }

    function created(post) {
        if (gone)
            return;
        const card = matches(post) ? (addPost(post) ?? list.get(post.id)) : null;
        if (card) {
            notice.hidden = true;
            card.node.classList.add('is-new');
            card.link.focus();
            return;
        }
        const where = post.categories.map((slug) => names.get(slug) ?? slug).join(', ');
        replace(notice, `Your post is published in ${where}, which this list does not show. `,
            h('a', { href: `#/post/${post.id}` }, 'Open your post'));
        notice.hidden = false;
        notice.querySelector('a').focus();
    }

    const unsubscribe = [
        members.destroy,
        forum.onPost((post) => {
            if (!matches(post))
                return;
            if (!loaded) {
                early.push(post);
                return;
            }
            const card = addPost(post);
            if (card && post.author?.id !== ctx.user.id) {
                card.node.classList.add('is-new');
                announcer.textContent = `New post by ${post.author?.nickname ?? 'someone'}: ${post.title}`;
            }
        }),
        forum.onComment((comment) => {
            const card = list.get(comment.post_id);
            if (card)
                card.setCount((card.post.comment_count ?? 0) + 1);
        }),
        forum.onHello(() => {
            if (!sent)
                return;
            if (loadingFirst)
                refreshAgain = true;
            else
                loadFirst();
        }),
    ];

    async function start() {
        const cats = await forum.categories();
        if (gone)
            return;
        if (!cats.list) {
            if (cats.status === 401)
                ctx.onAuthLost();
            else
                showStatus(h('p', { class: 'form-error', role: 'alert' }, `The categories could not be loaded. ${cats.error.message}`),
                    h('button', { type: 'button', class: 'button button-quiet', onclick: () => {
                        showStatus(h('p', { class: 'muted' }, 'Loading posts…'));
                        start();
                    } }, 'Try again'));
            return;
        }
        names = categoryNames(cats.list);
        replace(filters, filterNav(cats.list, !wanted || names.has(wanted) ? wanted : null));
        if (refocus)
            filters.querySelector('[aria-current="page"]')?.focus();
        if (wanted && !names.has(wanted)) {
            listTitle.textContent = 'No such category';
            showStatus(h('p', { class: 'form-error', role: 'alert' }, `There is no category called “${wanted}”. `,
                h('a', { href: '#/' }, 'Show all posts')));
            return;
        }
        listTitle.textContent = wanted ? `Latest in ${names.get(wanted)}` : 'Latest posts';
        if (wanted)
            ctx.setTitle?.(`${names.get(wanted)} · Forum`);
        const { toggle, form } = composer(ctx, cats.list, created);
        toolbar.append(toggle);
        replace(formSlot, form);
        if (remembered) {
            loaded = true;
            members.node.hidden = false;
            remembered.posts.forEach(addPost);
            setNextBefore(remembered.nextBefore);
            showEmpty();
            window.scrollTo(0, remembered.scrollY);
        }
        loadFirst();
    }
    start();

    return {
        node,
        title: 'Forum',
        destroy() {
            if (loaded) {
                forum.feedMemory = {
                    id: memoryId, wanted, nextBefore, scrollY: window.scrollY,
                    posts: list.ids().map((id) => list.get(id)?.post).filter(Boolean),
                };
            }
            gone = true;
            unsubscribe.forEach((fn) => fn());
        },
    };
}
