/*
 * Posts and comments on the client: the live store the forum views share, and the DOM pieces they
 * both draw posts and comments with.
 *
 * The store listens to the socket once for the whole page. Each post.created and comment.created
 * frame is passed on to the views at most once, so a view only has to keep its own lists free of
 * what it loaded itself. Every hello (the first one, and each one after a reconnect) is passed on
 * too: frames sent while the socket was down are not replayed, so a view that loaded before that
 * hello asks the server again and merges what it missed. The store also keeps what the user was
 * typing (the new post, a comment) while the views come and go, until it is sent or the user
 * changes.
 */
import { h, replace } from './dom.js';
import { api, errorOf } from './api.js';

const REMEMBERED_IDS = 5000;

/** A set that forgets its oldest ids beyond limit. */
function recentIds(limit) {
    const ids = new Set();
    return {
        has: (id) => ids.has(id),
        add(id) {
            ids.add(id);
            if (ids.size > limit)
                ids.delete(ids.values().next().value);
        },
        clear: () => ids.clear(),
    };
}

function listeners() {
    const fns = new Set();
    return {
        add(fn) {
            fns.add(fn);
            return () => fns.delete(fn);
        },
        emit(value) {
            for (const fn of [...fns]) {
                try {
                    fn(value);
                } catch (err) {
                    reportError(err); // one broken view must not starve the others
                }
            }
        },
    };
}

const isId = (value) => Number.isSafeInteger(value) && value > 0;

const emptyDraft = () => ({ title: '', body: '', categories: [], open: false });

/**
 * createForum(socket) → the store:
 *   onPost(fn), onComment(fn): fn(post) / fn(comment) for each new one, once; return unsubscribe
 *   onHello(fn):  fn() on every hello frame; returns unsubscribe
 *   categories(): resolves to {list: [{slug, name}], error: null} or {list: null, error: {message}};
 *                 the answer is kept once it succeeded
 *   draft:        the new post being written, {title, body, categories, open}
 *   commentDrafts: Map post id → the comment being written under it
 *   feedHash:     the hash of the last feed shown ('#/' or '#/?category=…'), for "back to posts"
 *   feedMemory:   what the last feed view had when it was left ({id, wanted, posts, nextBefore,
 *                 scrollY}), for Back to bring it back as it was (views/feed.js)
 *   reset():      forgets drafts and everything remembered (logout, another account)
 */
export function createForum(socket) {
    const posts = listeners();
    const comments = listeners();
    const hellos = listeners();
    const seenPosts = recentIds(REMEMBERED_IDS);
    const seenComments = recentIds(REMEMBERED_IDS);
    let categories = null;

    socket.on('post.created', (frame) => {
        const post = frame.post;
        if (!isId(post?.id) || seenPosts.has(post.id))
            return;
        seenPosts.add(post.id);
        posts.emit(post);
    });
    socket.on('comment.created', (frame) => {
        const comment = frame.comment;
        if (!isId(comment?.id) || !isId(comment.post_id) || seenComments.has(comment.id))
            return;
        seenComments.add(comment.id);
        comments.emit(comment);
    });
    socket.on('hello', () => hellos.emit());

    const store = {
        draft: emptyDraft(),
        commentDrafts: new Map(),
        feedHash: '#/',
        feedMemory: null,
        onPost: (fn) => posts.add(fn),
        onComment: (fn) => comments.add(fn),
        onHello: (fn) => hellos.add(fn),
        categories() {
            categories ??= api('GET', '/api/categories').then((res) => {
                if (res.status === 200 && Array.isArray(res.json?.categories))
                    return { list: res.json.categories, error: null };
                categories = null; // try again next time
                return { list: null, error: errorOf(res), status: res.status };
            });
            return categories;
        },
        reset() {
            store.draft = emptyDraft();
            store.commentDrafts.clear();
            store.feedHash = '#/';
            store.feedMemory = null;
        },
    };
    return store;
}

/* --- drawing ---------------------------------------------------------------------------------- */

/** <time> with the machine-readable date and the user's local rendering of it. */
/**
 * Fetches the next page behind a "Load more" button: the button shows that it is busy meanwhile.
 * Returns the page's JSON, or null when the view is gone, the session ended (ctx.onAuthLost), or
 * the request failed (said in errorNode).
 */
export async function fetchMore({ button, errorNode, label, noun, url, key, ctx, isGone }) {
    errorNode.hidden = true;
    button.textContent = 'Loading…';
    button.setAttribute('aria-busy', 'true');
    const res = await api('GET', url);
    button.textContent = label;
    button.removeAttribute('aria-busy');
    if (isGone())
        return null;
    if (res.status === 200 && Array.isArray(res.json?.[key]))
        return res.json;
    if (res.status === 401) {
        ctx.onAuthLost();
        return null;
    }
    errorNode.textContent = `More ${noun} could not be loaded. ${errorOf(res).message}`;
    errorNode.hidden = false;
    return null;
}

export function timeOf(iso) {
    const date = new Date(iso);
    const text = Number.isNaN(date.getTime())
        ? String(iso)
        : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    return h('time', { datetime: iso }, text);
}

export function commentCount(n) {
    if (!n)
        return 'No comments yet';
    return `${n} comment${n === 1 ? '' : 's'}`;
}

/** The names of categories by slug, from the store's list (slugs stand in for unknown ones). */
export function categoryNames(list) {
    return new Map((list ?? []).map((c) => [c.slug, c.name]));
}

function categoryTags(slugs, names) {
    return h('ul', { class: 'post-categories', 'aria-label': 'Categories' },
        (slugs ?? []).map((slug) => h('li', { class: 'category-tag' }, names.get(slug) ?? slug)));
}

function byline(author) {
    return h('span', { class: 'author', dir: 'auto' }, author?.nickname ?? 'someone');
}

const EXCERPT_CHARS = 180;

function excerpt(body) {
    const text = String(body ?? '').replace(/\s+/g, ' ').trim();
    return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS).trimEnd()}…` : text;
}

/**
 * A post in a list: its title (the link that opens it), author, date, categories, a line of its
 * text and its comment count. Returns {node, post, setCount(n), link}.
 */
export function postCard(post, names) {
    const titleId = `post-card-${post.id}`;
    const count = h('span', { class: 'comment-count' }, commentCount(post.comment_count));
    const link = h('a', { class: 'post-card-link', href: `#/post/${post.id}`, dir: 'auto' }, post.title);
    const node = h('li', { class: 'post-card', 'data-id': post.id },
        h('article', { 'aria-labelledby': titleId },
            h('h3', { class: 'post-card-title', id: titleId }, link),
            h('p', { class: 'post-meta' }, 'by ', byline(post.author), ' · ', timeOf(post.created_at)),
            h('p', { class: 'post-excerpt', dir: 'auto' }, excerpt(post.body)),
            h('div', { class: 'post-card-foot' }, categoryTags(post.categories, names), count)));
    return {
        node,
        post,
        link,
        setCount(n) {
            post.comment_count = n;
            count.textContent = commentCount(n);
        },
    };
}

/** The meta line and the whole text of a post, under its <h1> (which the view owns). */
export function postDetails(post, names) {
    const count = h('span', { class: 'comment-count' }, commentCount(post.comment_count));
    const node = h('div', { class: 'post-details' },
        h('p', { class: 'post-meta' }, 'by ', byline(post.author), ' · ', timeOf(post.created_at), ' · ', count),
        categoryTags(post.categories, names),
        h('div', { class: 'post-body', dir: 'auto' }, post.body));
    return {
        node,
        setCount(n) {
            post.comment_count = n;
            count.textContent = commentCount(n);
        },
    };
}

/** A comment in the list under a post. Returns {node}. */
export function commentItem(comment) {
    return {
        node: h('li', { class: 'comment', 'data-id': comment.id },
            h('article', { 'aria-label': `Comment by ${comment.author?.nickname ?? 'someone'}` },
                h('p', { class: 'comment-meta' }, byline(comment.author), ' · ', timeOf(comment.created_at)),
                h('div', { class: 'comment-body', dir: 'auto' }, comment.body))),
    };
}

/**
 * A list element whose items stay in id order (newest first when descending), each id once.
 * add(item) takes {node, ...} with the id in node.dataset.id; it returns false for an id that is
 * there already.
 */
export class IdList {
    #el;
    #descending;
    #items = new Map();

    constructor(el, { descending }) {
        this.#el = el;
        this.#descending = descending;
    }

    get size() {
        return this.#items.size;
    }

    has(id) {
        return this.#items.has(id);
    }

    get(id) {
        return this.#items.get(id);
    }

    /** The ids in the order they are shown. */
    ids() {
        return [...this.#el.children].map((node) => Number(node.dataset.id));
    }

    add(id, item) {
        if (this.#items.has(id))
            return false;
        // true when a comes before b on the screen
        const first = (a, b) => (this.#descending ? a > b : a < b);
        // most additions are at one end: look from the end backwards, and check the start first
        let before = null;
        const start = this.#el.firstElementChild;
        if (start && first(id, Number(start.dataset.id))) {
            before = start;
        } else {
            for (let node = this.#el.lastElementChild; node; node = node.previousElementSibling) {
                if (first(Number(node.dataset.id), id))
                    break;
                before = node;
            }
        }
        this.#el.insertBefore(item.node, before);
        this.#items.set(id, item);
        return true;
    }

    clear() {
        this.#items.clear();
        replace(this.#el);
    }
}
